# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS Table I row (e): re-scoring 3D findings with the 3D FPR network
(Yan et al., TMI 2020, Sec. IV-D, Eq. 2: the final score of a 3D proposal is
``(s_LENS + s_FPR) / 2``), on DeepLesion series and, as the whole-scan
path's re-scorer (:class:`LensFPRRescorer`), on a CT scan.
"""
import copy
import json
import os
import os.path as osp
import tempfile
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config

from mmlesion.methods.lens.datasets.fpr_patches import (DEFAULT_PATCH_SPACING,
                                                        FORMAT,
                                                        VolumeFPRPatches,
                                                        positive_box_3d)
from mmlesion.methods.lens.models.lens_fpr import combine_fpr_scores
from mmlesion.structures.finding_3d import Finding3D
from mmlesion.utils.configs.loading import load_config
from mmlesion.utils.reporting.progress import progress_bar
from mmlesion.utils.writing.atomic import atomic_write
from mmlesion.apis.detector_loader import (DetectorLoadSettings,
                                           LoadedDetector,
                                           init_lesion_detector)


def _fpr_patch_settings(fpr_cfg: Config) -> dict:
    """The FPR config's training patch dataset (FPR configs have no test
    dataloader: its crop is the one used at inference)."""
    ds = copy.deepcopy(fpr_cfg.train_dataloader.dataset)
    if ds.get('type') != 'LENSFPRPatchDataset':
        raise ValueError(
            'not a LENS FPR config: train_dataloader.dataset is a '
            f"{ds.get('type')}, not a LENSFPRPatchDataset")
    return ds


def load_fpr_model(config: Union[str, Config],
                   checkpoint: Optional[str],
                   device: str = 'cpu',
                   cfg_options: Optional[dict] = None) -> LoadedDetector:
    """A LENS FPR network (``LENSFPR``) with its weights, in eval mode.

    Args:
        config (str | Config): an FPR config (e.g.
            ``configs/lens/lens-fpr_resnet18-3d_1xb32-radam-6e_deeplesion.py``).
        checkpoint (str, optional): its trained weights (None: random
            weights, for tests of the plumbing).
        device (str): torch device.
        cfg_options (dict, optional): overrides of the config, those the
            network was trained with (a test-only width builds the same
            shapes as its checkpoint).

    Returns:
        LoadedDetector: the model (in eval mode on ``device``), its config
        and the checkpoint's meta.

    Raises:
        ValueError: the config is not an FPR config (naming it).
    """
    cfg = load_config(config) if isinstance(config, str) else config
    name = config if isinstance(config, str) else '<FPR config>'
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.model.get('type') != 'LENSFPR':
        raise ValueError(f"{name}: model type is {cfg.model.get('type')}, "
                         'not LENSFPR (a LENS 3D FPR config)')
    try:
        _fpr_patch_settings(cfg)
    except ValueError as err:
        raise ValueError(f'{name}: {err}') from err
    return init_lesion_detector(cfg, checkpoint,
                                DetectorLoadSettings(device=device))


@dataclass
class FPRPatchSource:
    """Where :func:`rescore_findings_with_fpr` crops each finding's FPR
    patch: the FPR config's :class:`~mmlesion.methods.lens.datasets.LENSFPRPatchDataset`
    over ``data_root``, or :class:`~mmlesion.methods.lens.datasets.fpr_patches.
    VolumeFPRPatches` over ``volumes``.

    Attributes:
        data_root (str, optional): DeepLesion-layout root of the series
            (unused with ``volumes``).
        data_prefix (dict, optional): the patch dataset's ``data_prefix``
            (default: the FPR config's).
        ann_path (str, optional): where to keep the proposal file the patch
            dataset reads (default: a temporary file, removed afterwards).
        volumes (dict, optional): series name -> (Z, Y, X) HU array in the
            grid of the findings' boxes.
        spacings (dict, optional): series name -> (z, y, x) mm voxel size
            of the series (the FPR config's ``patch_spacing`` resamples
            from it). Needed with ``volumes``; the PNG path falls back to
            ``data_root/DL_info.csv``.
    """
    data_root: Optional[str] = None
    data_prefix: Optional[dict] = None
    ann_path: Optional[str] = None
    volumes: Optional[Dict[str, np.ndarray]] = None
    spacings: Optional[Dict[str, Sequence[float]]] = None


@torch.no_grad()
def rescore_findings_with_fpr(
        fpr_model: torch.nn.Module,
        findings: Dict[str, List[Finding3D]],
        fpr_cfg: Config,
        source: FPRPatchSource,
        batch_size: int = 16,
        show_progress: bool = True) -> Dict[str, List[Finding3D]]:
    """Eq. 2 on 3D findings: ``score = (s_LENS + s_FPR) / 2``, each
    finding's FPR patch cropped as in training.

    Args:
        fpr_model (nn.Module): a ``LENSFPR`` in eval mode.
        findings (dict): series folder (under ``data_prefix.img`` of
            ``data_root``, or a key of ``volumes``) -> findings
            (``bbox_3d`` with z in slice indices, ``score`` ``s_LENS``), as
            :func:`predict_series_3d` returns them.
        fpr_cfg (Config): the FPR config.
        source (FPRPatchSource): the series the patches are cropped from.
        batch_size (int): patches per forward pass.
        show_progress (bool): mmengine progress bar over the findings.

    Returns:
        dict: the same keys, each finding a copy in input order
        (:meth:`~mmlesion.structures.finding_3d.Finding3D.rescored`) with
        the score parts ``s_lens`` and ``s_fpr`` and ``score`` = Eq. 2.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    props = [dict(series_dir=n, bbox_3d=positive_box_3d(f.bbox_3d, 4),
                  score=float(f.score), label=0)
             for n, items in findings.items() for f in items]
    spacings, ann_path = source.spacings, source.ann_path
    for p in props:
        if spacings and p['series_dir'] in spacings:
            p['spacing'] = [float(v) for v in spacings[p['series_dir']]]
    ds_cfg = _fpr_patch_settings(fpr_cfg)
    tmp = None
    if source.volumes is not None:
        dataset = VolumeFPRPatches(
            source.volumes, props, ds_cfg['patch_size'], ds_cfg['hu_window'],
            spacings,
            ds_cfg.get('patch_spacing', DEFAULT_PATCH_SPACING))
    elif not props:
        dataset = []
    else:
        from mmdet.registry import DATASETS
        from mmengine.registry import DefaultScope
        if ann_path is None:
            fd, tmp = tempfile.mkstemp(suffix='_lens_fpr_findings.json')
            os.close(fd)
            ann_path = tmp
        with atomic_write(ann_path) as f:
            json.dump(dict(metainfo=dict(format=FORMAT, note='findings to '
                                         're-score, label unused'),
                           proposals=props), f)
        ds_cfg.update(data_root=source.data_root,
                      ann_file=osp.abspath(ann_path))
        if source.data_prefix is not None:
            ds_cfg.update(data_prefix=source.data_prefix)
        try:
            with DefaultScope.overwrite_default_scope('mmdet'):
                dataset = DATASETS.build(ds_cfg)
        finally:
            if tmp is not None:
                os.remove(tmp)
    fpr_model.eval()
    device = next(fpr_model.parameters()).device
    s_fpr: List[float] = []
    bar = progress_bar(
        len(dataset), label='FPR patches') if show_progress and len(dataset) \
        else None
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(
            start, min(start + batch_size, len(dataset)))]
        res = fpr_model(
            torch.stack([it['inputs'] for it in items]).to(device),
            [it['data_samples'] for it in items], mode='predict')
        s_fpr += [float(r['fpr_score']) for r in res]
        if bar is not None:
            bar.update(len(items))
    if bar is not None:
        print()
    s_lens = torch.tensor([p['score'] for p in props], dtype=torch.float64)
    final = combine_fpr_scores(s_lens,
                               torch.tensor(s_fpr, dtype=torch.float64))
    parts = iter(zip(final.tolist(), s_fpr))
    return {n: [f.rescored(score, s_lens=float(f.score), s_fpr=fpr)
                for f, (score, fpr) in zip(items, parts)]
            for n, items in findings.items()}


class LensFPRRescorer:
    """LENS Eq. 2 on a whole scan's findings
    (:class:`~mmlesion.apis.whole_scan.settings.FindingRescorer`;
    ``--fpr-config --fpr-checkpoint``), the patches cropped from the
    resampled volume in mmdet's pixel convention the FPR was trained in
    (pixel ``i`` spans ``[i, i + 1)``: the findings' x, y + 0.5).

    Args:
        config (str | Config): the FPR config.
        checkpoint (str, optional): its weights (None: random weights, for
            tests of the plumbing).
    """

    def __init__(self, config: Union[str, Config],
                 checkpoint: Optional[str]) -> None:
        self.config, self.checkpoint = config, checkpoint
        self.files = dict(
            fpr_config=config if isinstance(config, str) else None,
            fpr_checkpoint=checkpoint)
        self.cfg: Optional[Config] = None
        self.model: Optional[torch.nn.Module] = None

    @classmethod
    def from_options(cls, config: Optional[str],
                     checkpoint: Optional[str]) -> Optional['LensFPRRescorer']:
        """The re-scorer of a command line's ``--fpr-config`` and
        ``--fpr-checkpoint``, or None without them.

        Raises:
            ValueError: only one of the two is given.
        """
        if (config is None) != (checkpoint is None):
            raise ValueError('--fpr-config and --fpr-checkpoint go together')
        return None if config is None else cls(config, checkpoint)

    def load(self, device: str) -> None:
        """Load the FPR network (:func:`load_fpr_model`)."""
        loaded = load_fpr_model(self.config, self.checkpoint, device)
        self.cfg, self.model = loaded.cfg, loaded.model

    @property
    def name(self) -> str:
        """The FPR config's file (``'LENSFPR'`` for one built in
        memory)."""
        cfg = self.cfg if self.cfg is not None else self.config
        return str(getattr(cfg, 'filename', None) or 'LENSFPR')

    def rescore(self, findings: List[Finding3D], resampled,
                show_progress: bool) -> List[Finding3D]:
        """Eq. 2 on the findings of one scan, in input order
        (:meth:`~mmlesion.apis.whole_scan.settings.FindingRescorer.
        rescore`)."""
        if self.model is None:
            raise RuntimeError('LensFPRRescorer.rescore before load()')
        # continuous voxels -> mmdet's pixels (class doc)
        shifted = [replace(f, bbox_3d=[v + .5 if k in (0, 1, 3, 4) else v
                                       for k, v in enumerate(f.bbox_3d)])
                   for f in findings]
        rescored = rescore_findings_with_fpr(
            self.model, dict(scan=shifted), self.cfg, FPRPatchSource(
                volumes=dict(scan=resampled.array),
                spacings=dict(scan=resampled.spacing_zyx)),
            show_progress=show_progress)['scan']
        return [replace(r, bbox_3d=f.bbox_3d)
                for r, f in zip(rescored, findings)]
