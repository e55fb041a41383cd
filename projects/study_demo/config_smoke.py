# Copyright (c) mmlesion contributors. All rights reserved.
"""Does a config train and predict? A smoke run of any mmlesion config.

For a config, :func:`smoke_config` builds its model (without pretrained
weights: no network is needed), its own optimiser wrapper and its
iteration-based learning-rate schedulers, runs ``iters`` training steps on
synthetic batches that have what the model's heads need, then predicts one
batch. It reports the first and last loss, whether every loss stayed
finite, the time per iteration and (on a GPU) the peak memory, in fp32 or
with mixed precision (mmengine's ``AmpOptimWrapper``).

The synthetic batch follows the model family:

- **2.5D detectors** (Faster R-CNN / ElixirNet, RetinaNet, the Improved
  RetinaNet, MULAN, LENS): images with as many channels as the config's
  ``LoadDeepLesionSlices`` loads, bright boxes on a dark background with
  labels drawn from the model's classes, a filled ellipse per box as its
  mask when the model has a segmentation head (the Improved RetinaNet's
  RECIST masks), and for LENS a ``dataset_id`` per batch (cycling through
  the model's datasets) with one uncertain (ignored) lesion on dataset 0.
- **3D detectors** (3D Aggregated Faster R-CNN): a ``(1, s, s, s)`` crop
  (``s`` = the config's ``crop_size``) with two nodule boxes.
- **LENS FPR**: ``(1, z, y, x)`` patches (the config's ``patch_size``),
  positive : negative = 1 : 2.

Epoch-based schedulers are not stepped: ``iters`` stays inside the first
epoch, where they keep the base learning rate (their epoch boundaries are
tested with mmengine's Runner elsewhere). Not a test of accuracy: a smoke
run says that a config builds, its losses are finite and fall on an easy
batch, and that it predicts.
"""
import copy
import math
import os
import statistics
import time
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config, ConfigDict

from mmlesion.apps.reproduce.timing import find_in_config, strip_pretrained

FAMILY_3D = '3d'
FAMILY_FPR = 'fpr'
FAMILY_2D = '2.5d'


def full_size_configs(config_dir: str) -> List[str]:
    """Every config under ``config_dir`` a user trains on real data.

    Leaves out ``_base_`` parts and the demo / tiny configs (names with
    ``demo`` or ``tiny``), which tests already run.

    Args:
        config_dir (str): the ``configs/`` folder.

    Returns:
        list[str]: sorted paths.
    """
    import glob
    import os.path as osp
    found = []
    for path in glob.glob(osp.join(config_dir, '**', '*.py'), recursive=True):
        rel = osp.relpath(path, config_dir)
        name = osp.basename(rel)
        if rel.split(osp.sep)[0] == '_base_' or 'demo' in name or \
                'tiny' in name:
            continue
        found.append(path)
    return sorted(found)


def find_key(obj: Any, key: str) -> Optional[Any]:
    """The first value of ``key`` in nested dicts / lists (depth first).

    Args:
        obj: a config node.
        key (str): the key looked for.

    Returns:
        The value, or None.
    """
    return find_in_config(obj, lambda node: node.get(key))


def _find_transform(obj: Any, type_name: str) -> Optional[dict]:
    return find_in_config(obj, lambda node: node
                  if node.get('type') == type_name else None)


def model_family(cfg: Config) -> str:
    """``'3d'``, ``'fpr'`` or ``'2.5d'`` from ``cfg.model.type``."""
    kind = cfg.model.get('type')
    if kind == 'AggregatedFasterRCNN3D':
        return FAMILY_3D
    if kind == 'LENSFPR':
        return FAMILY_FPR
    return FAMILY_2D


def input_channels(cfg: Config) -> int:
    """Slices per 2.5D input: ``num_slices`` of ``LoadDeepLesionSlices``.

    Falls back to the backbone's ``in_channels``, then 3.
    """
    load = _find_transform(cfg.get('train_dataloader'), 'LoadDeepLesionSlices')
    if load is not None and load.get('num_slices'):
        return int(load['num_slices'])
    return int(cfg.model.get('backbone', {}).get('in_channels') or 3)


def num_classes(cfg: Config) -> int:
    """The model's number of classes (1 when the config does not say)."""
    return int(find_key(cfg.model, 'num_classes') or 1)


def _boxes(gen: torch.Generator, size: int, count: int) -> List[List[int]]:
    boxes = []
    for _ in range(count):
        w, h = (int(v) for v in torch.randint(
            max(4, size // 16), max(6, size // 5), (2, ), generator=gen))
        x1 = int(torch.randint(0, size - w, (1, ), generator=gen))
        y1 = int(torch.randint(0, size - h, (1, ), generator=gen))
        boxes.append([x1, y1, x1 + w, y1 + h])
    return boxes


def _ellipse_mask(size: int, box: Sequence[int]) -> np.ndarray:
    x1, y1, x2, y2 = box
    yy, xx = np.mgrid[:size, :size]
    cx, cy = (x1 + x2 - 1) / 2, (y1 + y2 - 1) / 2
    rx, ry = max((x2 - x1) / 2, 1), max((y2 - y1) / 2, 1)
    return (((xx - cx) / rx)**2 + ((yy - cy) / ry)**2 <= 1).astype(np.uint8)


def batch_2d(step: int,
             batch_size: int,
             size: int,
             channels: int,
             classes: int = 1,
             with_masks: bool = False,
             dataset_id: Optional[int] = None) -> dict:
    """Synthetic 2.5D images with bright boxes (see the module doc).

    Args:
        step (int): seed of this batch.
        batch_size (int): images.
        size (int): height and width.
        channels (int): slices per image.
        classes (int): labels are drawn from ``range(classes)``.
        with_masks (bool): add a ``BitmapMasks`` ellipse per box.
        dataset_id (int, optional): LENS's dataset of the batch; dataset 0
            gets one uncertain lesion in ``ignored_instances``.

    Returns:
        dict: ``inputs`` and ``data_samples`` for ``model.train_step``.
    """
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    gen = torch.Generator().manual_seed(step)
    inputs, samples = [], []
    for i in range(batch_size):
        img = torch.rand(channels, size, size, generator=gen) * 0.2 - 0.6
        boxes = _boxes(gen, size, 2 + i % 2)
        for x1, y1, x2, y2 in boxes:
            img[:, y1:y2, x1:x2] += 0.8
        labels = torch.randint(0, classes, (len(boxes), ), generator=gen)
        sample = DetDataSample(
            metainfo=dict(
                img_id=step * batch_size + i,
                img_shape=(size, size),
                ori_shape=(size, size),
                pad_shape=(size, size),
                scale_factor=(1.0, 1.0)))
        gt = InstanceData(
            bboxes=torch.tensor(boxes, dtype=torch.float32),
            labels=labels.long())
        if with_masks:
            gt.masks = BitmapMasks(
                np.stack([_ellipse_mask(size, b) for b in boxes]), size,
                size)
        if dataset_id is not None:
            sample.set_metainfo(dict(dataset_id=dataset_id))
            n_ignored = 1 if dataset_id == 0 else 0
            sample.ignored_instances = gt[len(gt) - n_ignored:]
            gt = gt[:len(gt) - n_ignored]
        sample.gt_instances = gt
        inputs.append(img)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def batch_3d(step: int, batch_size: int,
             size: Union[int, Sequence[int]]) -> dict:
    """Synthetic ``(1, z, y, x)`` crops with two bright nodules.

    Args:
        step (int): seed of this batch.
        batch_size (int): crops.
        size (int | Sequence[int]): crop edge in voxels, or the crop's
            ``(z, y, x)`` size (e.g. DeepLesion's ``(64, 128, 128)``).

    Returns:
        dict: ``inputs`` and ``data_samples``.
    """
    from mmlesion.structures.volume_sample import volume_sample
    shape = (int(size), ) * 3 if isinstance(size, (int, float)) else tuple(
        int(s) for s in size)
    edge = min(shape)
    gen = torch.Generator().manual_seed(step)
    inputs, samples = [], []
    for _ in range(batch_size):
        vol = torch.rand(1, *shape, generator=gen) * 0.2 - 0.6
        boxes = []
        for _ in range(2):
            d = int(torch.randint(max(3, edge // 16), max(5, edge // 4),
                                  (1, ), generator=gen))
            z, y, x = (int(torch.randint(0, n - d, (1, ), generator=gen))
                       for n in shape)
            vol[:, z:z + d, y:y + d, x:x + d] += 0.8
            boxes.append([x, y, z, x + d, y + d, z + d])
        inputs.append(vol)
        samples.append(volume_sample(shape, boxes))
    return dict(inputs=inputs, data_samples=samples)


def batch_fpr(step: int, batch_size: int,
              patch_size: Sequence[int]) -> dict:
    """Synthetic FPR patches, TP : FP = 1 : 2 (a blob vs noise).

    Args:
        step (int): seed of this batch.
        batch_size (int): patches.
        patch_size (Sequence[int]): ``(z, y, x)``.

    Returns:
        dict: ``inputs`` ``(N, 1, z, y, x)`` and ``data_samples`` (dicts).
    """
    z, y, x = (int(v) for v in patch_size)
    gen = torch.Generator().manual_seed(step)
    box = [x // 4, y // 4, z // 4, 3 * x // 4, 3 * y // 4, 3 * z // 4]
    patches, samples = [], []
    for i in range(batch_size):
        label = int(i % 3 == 0)
        patch = torch.rand(1, z, y, x, generator=gen) * 0.4 - 0.8
        region = patch[:, box[2]:box[5], box[1]:box[4], box[0]:box[3]]
        region += 1.0 if label else torch.rand(
            region.shape, generator=gen) * 0.6 - 0.3
        patches.append(patch)
        samples.append(dict(bbox_3d=box, label=label, lens_score=0.5))
    return dict(inputs=torch.stack(patches), data_samples=samples)


def smoke_batch(cfg: Config, step: int, batch_size: int, size: int,
                size_3d: int, patch_size: Sequence[int]) -> dict:
    """The synthetic batch of ``cfg``'s model family (see the module doc)."""
    family = model_family(cfg)
    if family == FAMILY_3D:
        return batch_3d(step, batch_size, size_3d)
    if family == FAMILY_FPR:
        return batch_fpr(step, batch_size, patch_size)
    num_datasets = cfg.model.get('num_datasets') if cfg.model.get(
        'type') == 'LENS' else None
    return batch_2d(
        step,
        batch_size,
        size,
        input_channels(cfg),
        num_classes(cfg),
        with_masks=bool(cfg.model.get('seg_head')),
        dataset_id=None if num_datasets is None else step % num_datasets)


def _count_predictions(outputs: Sequence[Any]) -> int:
    total = 0
    for out in outputs:
        pred = getattr(out, 'pred_instances', None)
        # detectors: their instances; the FPR classifier: one score each
        total += len(pred) if pred is not None else 1
    return total


def smoke_config(config: str,
                 iters: int = 10,
                 amp: bool = False,
                 device: str = 'cpu',
                 batch_size: Optional[int] = None,
                 size: Optional[int] = None,
                 size_3d: Optional[int] = None,
                 patch_size: Optional[Sequence[int]] = None,
                 seed: int = 0) -> Dict[str, Any]:
    """Train ``iters`` steps of ``config`` on synthetic batches, predict.

    Args:
        config (str): config file.
        iters (int): training iterations (>= 2).
        amp (bool): mixed precision (``AmpOptimWrapper``; needs CUDA).
        device (str): ``'cpu'``, ``'cuda'``, ...
        batch_size (int, optional): images per batch; default: the config's
            ``train_dataloader.batch_size`` (at most 4 on the CPU).
        size (int, optional): 2.5D image size; default 512 (the DeepLesion
            configs' scale).
        size_3d (int, optional): 3D crop edge; default the config's
            ``crop_size`` (128 for LUNA16).
        patch_size (Sequence[int], optional): FPR patch; default the
            config's ``patch_size``.
        seed (int): torch seed of the model's initialisation.

    Returns:
        dict: ``config``, ``family``, ``precision``, ``status`` (``ok``,
        ``failed`` or ``skipped``), ``reason``, ``first_loss``,
        ``last_loss``, ``finite``, ``s_per_iter``, ``peak_mem_mb`` (None on
        the CPU), ``predictions``, ``iters``, ``batch_size``, ``input``.
    """
    from mmdet.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS, DefaultScope

    if iters < 2:
        raise ValueError(f'iters must be >= 2, got {iters}')
    row: Dict[str, Any] = dict(
        config=config,
        precision='amp' if amp else 'fp32',
        status='failed',
        reason='',
        first_loss=None,
        last_loss=None,
        finite=None,
        s_per_iter=None,
        peak_mem_mb=None,
        predictions=None,
        iters=iters)
    cuda = str(device).startswith('cuda')
    if amp and not cuda:
        row.update(status='skipped', reason='AMP needs a CUDA device')
        return row
    cfg = Config.fromfile(config)
    row['family'] = family = model_family(cfg)
    problems = amp_config_problems(cfg) if amp else []
    if problems:
        row.update(status='failed', reason='; '.join(problems))
        return row
    if cfg.get('optim_wrapper') is None or not cfg.optim_wrapper.get(
            'optimizer'):
        row.update(
            status='skipped',
            reason='no optim_wrapper.optimizer (a search config: run it '
            'with its own tool, e.g. tools/search_alb.py)')
        return row
    if batch_size is None:
        batch_size = int(cfg.train_dataloader.get('batch_size', 2))
        if not cuda:
            batch_size = min(batch_size, 4)
    size = size or 512
    # an int edge, or a (z, y, x) crop such as DeepLesion 3D's (64, 128, 128)
    size_3d = size_3d or find_key(cfg.get('train_dataloader'),
                                  'crop_size') or 128
    if not isinstance(size_3d, (int, float)):
        size_3d = tuple(int(s) for s in size_3d)
    patch_size = tuple(patch_size or find_key(
        cfg.get('train_dataloader'), 'patch_size') or (8, 64, 64))
    row['batch_size'] = batch_size
    row['input'] = {
        FAMILY_3D: f'{size_3d}^3' if isinstance(size_3d, int) else
        'x'.join(map(str, size_3d)),
        FAMILY_FPR: 'x'.join(map(str, patch_size))
    }.get(family, f'{input_channels(cfg)}x{size}x{size}')
    model_cfg = copy.deepcopy(cfg.model)
    strip_pretrained(model_cfg)
    try:
        torch.manual_seed(seed)
        with DefaultScope.overwrite_default_scope(
                cfg.get('default_scope', 'mmdet')):
            model = MODELS.build(model_cfg)
        model.init_weights()
        model.to(device).train()
        optim_cfg = copy.deepcopy(cfg.optim_wrapper)
        if amp:
            optim_cfg['type'] = 'AmpOptimWrapper'
        optim = build_optim_wrapper(model, ConfigDict(optim_cfg))
        schedulers = [
            PARAM_SCHEDULERS.build(dict(s, optimizer=optim))
            for s in copy.deepcopy(cfg.get('param_scheduler') or [])
            if not s.get('by_epoch', True)
        ]
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        losses, times = [], []
        for step in range(iters):
            batch = smoke_batch(cfg, step, batch_size, size, size_3d,
                                patch_size)
            if cuda:
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            log_vars = model.train_step(batch, optim)
            if cuda:
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
            for scheduler in schedulers:
                scheduler.step()
            losses.append(float(log_vars['loss']))
        model.eval()
        with torch.no_grad():
            outputs = model.test_step(
                smoke_batch(cfg, iters, batch_size, size, size_3d,
                            patch_size))
        finite = all(math.isfinite(v) for v in losses)
        row.update(
            status='ok' if finite else 'failed',
            reason='' if finite else 'a loss was not finite',
            first_loss=losses[0],
            last_loss=losses[-1],
            finite=finite,
            s_per_iter=statistics.median(times[1:]),
            predictions=_count_predictions(outputs))
        if cuda:
            row['peak_mem_mb'] = torch.cuda.max_memory_allocated(
                device) / 2**20
    except Exception as err:  # noqa: B902  (reported in the table)
        row.update(status='failed', reason=f'{type(err).__name__}: {err}',
                   where=failure_location(err))
    return row


def failure_location(err: BaseException, frames: int = 3) -> List[str]:
    """Where an exception came from: its innermost frames as
    ``path:line in function``, so that a failed row says which code to fix
    (the package's path is shortened to ``mmdet/...``, ``mmlesion/...``).

    Args:
        err (BaseException): the exception.
        frames (int): how many innermost frames. Defaults to 3.

    Returns:
        list[str]: innermost last.
    """
    import traceback
    return [
        f'{short_source_path(frame.filename)}:{frame.lineno} in {frame.name}'
        for frame in traceback.extract_tb(err.__traceback__)[-frames:]
    ]


def short_source_path(path: str) -> str:
    """``path`` from the innermost package folder on it (``mmlesion/``,
    ``mmdet/``, ``mmengine/``, ``mmcv/``, ``torch/``), e.g. ``mmdet/x.py``
    for ``/home/u/mmlesion/.venv/.../site-packages/mmdet/x.py``: the folder
    nearest the file wins, so a clone named ``mmlesion`` with its
    environment inside does not claim mmdet's files.

    Args:
        path (str): a source file's path.

    Returns:
        str: the shortened path, or ``path`` if no package folder is on it.
    """
    path = path.replace(os.sep, '/')
    cuts = [(path.rfind(f'/{pkg}/'), pkg)
            for pkg in ('mmlesion', 'mmdet', 'mmengine', 'mmcv', 'torch')]
    at, pkg = max(cuts)
    if at < 0:
        return path
    return path[at + 1:]


#: mmcv's ``batched_nms`` default ``split_thr``.
BATCHED_NMS_SPLIT_THR = 10000


def amp_config_problems(cfg: Config) -> List[str]:
    """Settings of ``cfg`` that break mixed precision (``--amp``).

    mmcv's ``batched_nms`` switches to one NMS call per level once
    ``split_thr`` (default 10000) boxes or more come in, and that path
    writes float32 scores into a float16 tensor: under AMP it fails with an
    index_put dtype error (seen on an H100 with mmdet's C4 RPN, which keeps
    12000 boxes). An RPN that keeps ``nms_pre`` >= ``split_thr`` boxes must
    raise ``nms.split_thr`` above ``nms_pre``.

    Args:
        cfg (Config): a full config.

    Returns:
        list[str]: one sentence per problem (empty: none found).
    """
    problems = []
    model = cfg.get('model') or {}
    for section, key in (('train_cfg', 'rpn_proposal'), ('test_cfg', 'rpn')):
        node = (model.get(section) or {}).get(key) or {}
        nms_pre = node.get('nms_pre', 0)
        split_thr = (node.get('nms') or {}).get('split_thr',
                                                 BATCHED_NMS_SPLIT_THR)
        if nms_pre >= split_thr:
            problems.append(
                f'model.{section}.{key}: nms_pre={nms_pre} boxes reach '
                f"mmcv's batched_nms with split_thr={split_thr}, whose "
                'split path fails under AMP; set nms.split_thr > nms_pre')
    return problems


def format_smoke_table(rows: Sequence[Dict[str, Any]]) -> str:
    """The rows as one text table (config, precision, losses, ...)."""

    def num(value, fmt):
        return '-' if value is None else format(value, fmt)

    width = max([len('config')] + [len(r['config']) for r in rows])
    lines = [
        f"{'config':<{width}}  {'prec':<4}  {'status':<7}  {'input':<11}  "
        f"{'loss first':>10}  {'last':>8}  {'finite':<6}  {'s/iter':>7}  "
        f"{'peak MB':>8}  {'preds':>5}  reason"
    ]
    for r in rows:
        lines.append(
            f"{r['config']:<{width}}  {r['precision']:<4}  "
            f"{r['status']:<7}  {r.get('input', '-'):<11}  "
            f"{num(r['first_loss'], '10.4f')}  {num(r['last_loss'], '8.4f')}"
            f"  {str(r['finite']):<6}  {num(r['s_per_iter'], '7.3f')}  "
            f"{num(r['peak_mem_mb'], '8.0f')}  "
            f"{num(r['predictions'], '5d')}  {r['reason'][:200]}")
    return '\n'.join(lines)
