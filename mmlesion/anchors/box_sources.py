# Copyright (c) mmlesion contributors. All rights reserved.
"""Ground-truth boxes for anchor optimisation, in network-input pixels.

The anchor search of Zlocha et al. (MICCAI 2019, Sec. 2.1) fits anchors to
the boxes the detector is trained on, i.e. after the pipeline's resize:
those of a DeepLesion ``DL_info.csv`` (:func:`boxes_from_dl_info`) or of the
dataset of a config's dataloader (:func:`boxes_from_config`), rescaled as
its **top-level resize transforms** would (:func:`pipeline_resize_factor`).
"""
import copy
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmengine.config import Config
from mmengine.logging import print_log

from .de_anchor_optimizer import AnchorConfig

#: Transforms treated as deterministic resizes (``scale``/``scale_factor``).
_RESIZES = ('Resize', 'FixScaleResize', 'FixShapeResize')
#: Random resizes: approximated by their nominal (mean) scale.
_RANDOM_RESIZES = ('RandomResize', 'RandomChoiceResize')


def _type_name(t: dict) -> str:
    name = t.get('type', '')
    if not isinstance(name, str):
        name = getattr(name, '__name__', str(name))
    return name.split('.')[-1]


def _as_wh(scale) -> Tuple[int, int]:
    if isinstance(scale, (int, float)):
        return (int(scale), int(scale))
    return (int(scale[0]), int(scale[1]))


def _resize_size(w: int, h: int, scale: Optional[Sequence], scale_factor,
                 keep_ratio: bool) -> Tuple[int, int]:
    """New (w, h) as mmdet's ``Resize`` computes it."""
    if scale is None:
        if isinstance(scale_factor, (int, float)):
            scale_factor = (float(scale_factor), float(scale_factor))
        scale = (int(w * scale_factor[0] + 0.5),
                 int(h * scale_factor[1] + 0.5))
    scale = _as_wh(scale)
    if keep_ratio:
        return mmcv.rescale_size((w, h), scale)
    return scale


def _nominal_scale(t: dict) -> Tuple[Optional[Tuple], bool]:
    """Nominal ``(scale, keep_ratio)`` of a resize transform config."""
    name = _type_name(t)
    keep_ratio = bool(t.get('keep_ratio', False))
    if name == 'RandomResize':
        scale = t['scale']
        if t.get('ratio_range') is None and isinstance(
                scale, (list, tuple)) and isinstance(scale[0], (list, tuple)):
            scale = tuple(
                int(round(np.mean([s[i] for s in scale]))) for i in (0, 1))
        return _as_wh(scale), keep_ratio
    if name == 'RandomChoiceResize':
        scales = t['scales']
        if not isinstance(scales[0], (list, tuple)):
            scales = [scales]
        scale = tuple(
            int(round(np.mean([s[i] for s in scales]))) for i in (0, 1))
        return scale, bool(t.get('keep_ratio', keep_ratio))
    if name == 'FixShapeResize':
        return (int(t['width']), int(t['height'])), keep_ratio
    return (t.get('scale'), keep_ratio)


def pipeline_resize_factor(pipeline: Sequence[dict], width: int,
                           height: int) -> Tuple[float, float]:
    """``(w_factor, h_factor)`` the pipeline's resizes apply to an image.

    Scans the **top-level** transforms in order: ``Resize``,
    ``FixScaleResize`` and ``FixShapeResize`` exactly as mmdet computes the
    new size; ``RandomResize`` and ``RandomChoiceResize`` by their nominal
    (mean) scale. Several resizes compose; nested resizes and scaling
    augmentations are ignored.

    Args:
        pipeline (Sequence[dict]): transform configs.
        width (int): original image width.
        height (int): original image height.

    Returns:
        tuple[float, float]: factors for x and y (1, 1 without resize).
    """
    w, h = int(width), int(height)
    w0, h0 = w, h
    for t in pipeline:
        name = _type_name(t)
        if name in ('Resize', 'FixScaleResize'):
            w, h = _resize_size(w, h, t.get('scale'), t.get('scale_factor'),
                                bool(t.get('keep_ratio', False)))
        elif name in _RESIZES + _RANDOM_RESIZES:
            scale, keep = _nominal_scale(t)
            w, h = _resize_size(w, h, scale, None, keep)
    return w / w0, h / h0


def resize_transforms(pipeline: Sequence[dict]) -> List[dict]:
    """The top-level resize transforms of a pipeline (for reports)."""
    return [t for t in pipeline if _type_name(t) in _RESIZES + _RANDOM_RESIZES]


def boxes_from_dl_info(csv_path: str,
                       split: Optional[str] = None,
                       skip_noisy: bool = False,
                       img_scale: Optional[Tuple[int, int]] = None,
                       keep_ratio: bool = True,
                       pipeline: Optional[Sequence[dict]] = None
                       ) -> np.ndarray:
    """Lesion boxes of a DeepLesion ``DL_info.csv``.

    Args:
        csv_path (str): the CSV (all 18 official columns).
        split (str, optional): ``'train'``, ``'val'`` or ``'test'`` keeps
            the rows of that ``Train_Val_Test`` value; None keeps all.
        skip_noisy (bool): drop ``Possibly_noisy == 1`` rows.
        img_scale (tuple, optional): ``(w, h)`` of a ``Resize`` applied to
            every image of size ``Image_size``; None keeps native pixels.
        keep_ratio (bool): the resize keeps the aspect ratio.
        pipeline (Sequence[dict], optional): rescale each image as the
            resizes of this pipeline would
            (:func:`pipeline_resize_factor`); exclusive with ``img_scale``.

    Returns:
        np.ndarray: ``(N, 4)`` float64 ``x1, y1, x2, y2`` (0-based, ``x2,
        y2`` one past the last pixel, as
        :class:`~mmlesion.datasets.DeepLesionDataset` gives them).
    """
    if img_scale is not None and pipeline is not None:
        raise ValueError('boxes_from_dl_info: give img_scale or pipeline, '
                         'not both')
    from mmlesion.datasets.deeplesion.dl_info import (SPLITS, mmdet_box,
                                                      parse_dl_info)
    records = parse_dl_info(csv_path)
    if split is not None:
        if split not in SPLITS:
            raise ValueError(f'Unknown split {split!r}; expected one of '
                             f'{sorted(SPLITS)}')
        records = [r for r in records if r.split == SPLITS[split]]
    if skip_noisy:
        records = [r for r in records if not r.noisy]
    boxes = np.array([mmdet_box(r.bbox) for r in records],
                     dtype=np.float64).reshape(-1, 4)  # as the dataset's
    if (img_scale is not None or pipeline is not None) and len(records):
        factors = []
        for r in records:
            h, w = r.image_size
            if pipeline is not None:
                factors.append(pipeline_resize_factor(pipeline, w, h))
                continue
            nw, nh = _resize_size(w, h, img_scale, None, keep_ratio)
            factors.append((nw / w, nh / h))
        f = np.array(factors)
        boxes = boxes * np.concatenate([f, f], axis=1)
    return boxes


def dataset_pipeline(dataset_cfg: dict) -> List[dict]:
    """The pipeline of a dataset config (looking inside wrappers)."""
    if dataset_cfg.get('pipeline'):
        return list(dataset_cfg['pipeline'])
    if 'dataset' in dataset_cfg:
        return dataset_pipeline(dataset_cfg['dataset'])
    if dataset_cfg.get('datasets'):
        return dataset_pipeline(dataset_cfg['datasets'][0])
    return []


def _image_size(info: dict) -> Tuple[int, int]:
    """(width, height) of a data_info; reads the image if not recorded."""
    if info.get('width') and info.get('height'):
        return int(info['width']), int(info['height'])
    path = info.get('img_path')
    if path is None or not osp.isfile(path):
        raise FileNotFoundError(
            f'data_info has no width/height and its image is missing: '
            f'{path}')
    img = mmcv.imread(path, flag='unchanged')
    return img.shape[1], img.shape[0]


class ConfigBoxes(NamedTuple):
    """The ``(N, 4)`` boxes of a config's dataset and what they are
    (dataset type, number of images, resize transforms, distinct
    factors)."""
    boxes: np.ndarray
    source: Dict[str, object]


def boxes_from_config(cfg: Config,
                      split: str = 'val',
                      apply_resize: bool = True
                      ) -> ConfigBoxes:
    """Boxes of the dataset of ``cfg.{split}_dataloader``.

    The dataset is built through mmdet's registry (``custom_imports`` and
    ``default_scope`` of the config are honoured) and read with
    ``get_data_info``; instances with ``ignore_flag`` are skipped. Boxes are
    rescaled by :func:`pipeline_resize_factor` of that dataloader's
    pipeline for each image size.

    Args:
        cfg (Config): the config.
        split (str): ``'train'``, ``'val'`` or ``'test'``.
        apply_resize (bool): False keeps original pixels.

    Returns:
        tuple: ``(N, 4)`` boxes and a dict describing the source (dataset
        type, number of images, resize transforms, distinct factors).
    """
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings
    key = f'{split}_dataloader'
    if key not in cfg or cfg[key] is None:
        raise ValueError(f'The config has no {key}')
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg['custom_imports'])
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    from mmdet.registry import DATASETS
    dataset_cfg = copy.deepcopy(cfg[key]['dataset'])
    pipeline = dataset_pipeline(dataset_cfg) if apply_resize else []
    dataset = DATASETS.build(dataset_cfg)
    if hasattr(dataset, 'full_init'):
        dataset.full_init()
    boxes, factors = [], set()
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        inst = [
            x['bbox'] for x in info.get('instances', [])
            if not x.get('ignore_flag', 0)
        ]
        if not inst:
            continue
        fx, fy = 1.0, 1.0
        if pipeline:
            w, h = _image_size(info)
            fx, fy = pipeline_resize_factor(pipeline, w, h)
        factors.add((round(fx, 6), round(fy, 6)))
        boxes.append(
            np.asarray(inst, dtype=np.float64).reshape(-1, 4) *
            np.array([fx, fy, fx, fy]))
    if not boxes:
        raise ValueError(f'The {split} dataset of the config has no boxes')
    out = np.concatenate(boxes, axis=0)
    info = dict(
        dataset=type(dataset).__name__,
        num_images=len(dataset),
        resizes=resize_transforms(pipeline),
        factors=sorted(factors))
    if any(
            _type_name(t) in _RANDOM_RESIZES
            for t in resize_transforms(pipeline)):
        print_log(
            'Random resize in the pipeline: boxes use its nominal scale',
            logger='current')
    return ConfigBoxes(out, info)


def anchor_config_from_model(cfg: Config) -> AnchorConfig:
    """The anchors of the model's ``bbox_head`` (or ``rpn_head``).

    Raises:
        ValueError: if neither head has an ``anchor_generator``.
    """
    from .model_pyramid import anchor_head_key
    head = anchor_head_key(cfg)
    return AnchorConfig.from_generator_cfg(
        dict(cfg.model[head].anchor_generator))
