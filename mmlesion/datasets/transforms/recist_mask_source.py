# Copyright (c) mmlesion contributors. All rights reserved.
"""Datasets feeding the RECIST-to-mask tools: per key slice the results as
a config's ``RecistToMask`` sees them (its pipeline cut before it) and its
arguments, so that cached masks are the training pipeline's; or a
DeepLesion CSV read with :data:`DEFAULT_PRE_PIPELINE`."""
import copy
import os.path as osp
from dataclasses import dataclass
from typing import List, NamedTuple, Optional

from mmengine.config import Config

from .recist_grabcut import RecistToMask

#: Loading steps up to ``gt_recists`` (the paper's 3 slices at 2 mm and
#: [-1024, 1050] HU -> [-1, 1]).
DEFAULT_PRE_PIPELINE: List[dict] = [
    dict(type='LoadDeepLesionSlices', num_slices=3, interval_mm=2.0),
    dict(type='WindowHU', window=(-1024., 1050.), out_range=(-1., 1.)),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='LoadRecistPoints'),
]


def _name(t: dict) -> str:
    return str(t.get('type', '')).split('.')[-1]


class MaskPipeline(NamedTuple):
    """A pipeline cut before its ``RecistToMask``: the transform configs
    before it and its config (type removed)."""
    before: List[dict]
    masker: dict


def split_mask_pipeline(pipeline: List[dict]) -> MaskPipeline:
    """Cut a pipeline before its ``RecistToMask``.

    Args:
        pipeline (list[dict]): transform configs.

    Returns:
        MaskPipeline: without a ``RecistToMask``,
        :data:`DEFAULT_PRE_PIPELINE` and ``{}``.
    """
    for i, t in enumerate(pipeline):
        if _name(t) == 'RecistToMask':
            cfg = {k: v for k, v in dict(t).items() if k != 'type'}
            return MaskPipeline(
                [copy.deepcopy(dict(x)) for x in pipeline[:i]], cfg)
    return MaskPipeline(copy.deepcopy(DEFAULT_PRE_PIPELINE), {})


@dataclass(frozen=True)
class RecistSource:
    """Where :func:`build_recist_source` reads the RECIST lesions: a
    config's dataloader or a ``DL_info.csv``.

    Args:
        config (str, optional): config file (uses ``{split}_dataloader``).
        split (str): dataloader prefix for ``config``; for ``csv`` the
            ``Train_Val_Test`` split to keep (``'all'`` keeps every row).
        csv (str, optional): DeepLesion ``DL_info.csv`` instead of a config.
        img_dir (str, optional): ``Images_png`` folder of ``csv``; default
            ``<csv folder>/Images_png`` or, if absent,
            ``<csv folder>/../Images_png``.
        skip_missing (bool): skip key slices whose PNG is missing (``csv``).
        drop_noisy (bool): drop ``Possibly_noisy`` lesions (``csv``).
        cfg_options (dict, optional): merged into the config.
    """
    config: Optional[str] = None
    split: str = 'train'
    csv: Optional[str] = None
    img_dir: Optional[str] = None
    skip_missing: bool = False
    drop_noisy: bool = False
    cfg_options: Optional[dict] = None


class RecistMasking(NamedTuple):
    """A dataset of RECIST lesions and the ``RecistToMask`` of its
    pipeline."""
    dataset: object
    masker: RecistToMask


def build_recist_source(source: RecistSource,
                        mask_overrides: Optional[dict] = None
                        ) -> RecistMasking:
    """Dataset (pipeline up to ``gt_recists``) and its ``RecistToMask``.

    Args:
        source (RecistSource): the config or the CSV, and how to read it.
        mask_overrides (dict, optional): ``RecistToMask`` arguments that
            replace the pipeline's.

    Returns:
        tuple: ``(dataset, RecistToMask)``; the mask transform has no
        ``cache_dir`` (the tools compute masks).
    """
    from mmengine.registry import init_default_scope
    from mmdet.registry import DATASETS
    config, split, csv, img_dir = (source.config, source.split, source.csv,
                                   source.img_dir)
    skip_missing, drop_noisy, cfg_options = (
        source.skip_missing, source.drop_noisy, source.cfg_options)
    if (config is None) == (csv is None):
        raise ValueError('Give exactly one of a config or --csv')
    if config is not None:
        cfg = Config.fromfile(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        if cfg.get('custom_imports'):
            from mmengine.utils import import_modules_from_strings
            import_modules_from_strings(**cfg['custom_imports'])
        init_default_scope(cfg.get('default_scope', 'mmdet'))
        key = f'{split}_dataloader'
        if cfg.get(key) is None:
            raise ValueError(f'{config}: no {key}')
        ds_cfg = copy.deepcopy(cfg[key]['dataset'])
        inner = ds_cfg
        while 'pipeline' not in inner and 'dataset' in inner:
            inner = inner['dataset']
        pre, mask_cfg = split_mask_pipeline(list(inner.get('pipeline', [])))
        inner['pipeline'] = pre
        dataset = DATASETS.build(ds_cfg)
    else:
        init_default_scope('mmdet')
        if not osp.isfile(csv):
            raise FileNotFoundError(f'CSV not found: {csv}')
        csv = osp.abspath(csv)
        if img_dir is None:
            here = osp.join(osp.dirname(csv), 'Images_png')
            img_dir = here if osp.isdir(here) else osp.join(
                osp.dirname(osp.dirname(csv)), 'Images_png')
        if not osp.isdir(img_dir):
            raise FileNotFoundError(f'Images_png folder not found: {img_dir}')
        dataset = DATASETS.build(
            dict(
                type='DeepLesionDataset',
                data_root='',
                ann_file=csv,
                data_prefix=dict(img=osp.abspath(img_dir)),
                split=None if split in (None, 'all') else split,
                drop_noisy=drop_noisy,
                skip_missing_key_slices=skip_missing,
                test_mode=True,
                pipeline=copy.deepcopy(DEFAULT_PRE_PIPELINE)))
        mask_cfg = {}
    mask_cfg.update(mask_overrides or {})
    mask_cfg.pop('cache_dir', None)
    mask_cfg.pop('cache_missing', None)
    return RecistMasking(dataset, RecistToMask(**mask_cfg))
