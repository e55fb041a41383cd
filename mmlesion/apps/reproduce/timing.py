# Copyright (c) mmlesion contributors. All rights reserved.
"""Seconds per training item of a config, timed on the present device.

:func:`time_training_step` times ``model.train_step`` of the config's
model (random weights: nothing is downloaded) and optimiser wrapper on
synthetic batches (no dataset is read), the unit of
:data:`~.estimate.SECONDS_PER_TRAINING_ITEM`.

The synthetic batch follows the model:

- **2.5D detectors**: ``train_dataloader.batch_size`` images of
  ``C x S x S``, ``C`` the slices ``LoadDeepLesionSlices`` loads (else the
  backbone's ``in_channels``, else 3), ``S`` the side the training
  ``Resize`` gives a square DeepLesion slice (512 without one); 1-3 bright
  boxes per image, a box-shaped mask each when the model has a
  segmentation head, and for a model of several datasets
  (``num_datasets``) one ``dataset_id`` per batch (cycling through them).
- **other inputs**: a registered method's (``PaperTables.training_inputs``
  reads the config of its detector ``type``, ``synthetic_batches`` makes
  the batch of that input's kind), e.g. 3D crops or patches.
"""
import copy
import logging
import os.path as osp
import statistics
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterator, Mapping,
                    Optional, Sequence, TextIO, Tuple)

from .estimate import StepTime, shipped_step_time
from .paper_tables import paper_view
from .plan import parse_cfg_options, parsed_config

if TYPE_CHECKING:
    import torch
    from mmengine.config import Config

    from mmlesion.structures.data_batch import DataBatch

#: the side of a 2.5D training image when the pipeline has no ``Resize``
#: (DeepLesion's slices are 512 x 512)
DEFAULT_IMAGE_SIZE = 512

#: the config timed for a stage the plan names only by its step-time
#: family (e.g. a cross-validation's folds): family -> config (each
#: registered method's ``family_configs``)
FAMILY_CONFIGS: Mapping[str, str] = paper_view('family_configs')
#: detector ``type`` -> (config, batch size) -> its :class:`TrainingInput`,
#: for the models whose input is no 2D image (each registered method's
#: ``training_inputs``)
METHOD_TRAINING_INPUTS: Mapping[str, Callable[['Config', int],
                                              'TrainingInput']] = \
    paper_view('training_inputs')
#: training-input kind -> (input, step) -> a synthetic batch (each
#: registered method's ``synthetic_batches``)
METHOD_BATCHES: Mapping[str, Callable[['TrainingInput', int], dict]] = \
    paper_view('synthetic_batches')


def strip_pretrained(node: Any) -> None:
    """Remove every ``init_cfg`` of type ``Pretrained`` and every
    ``pretrained`` path (random weights: no download, no network).

    Args:
        node: a config node, changed in place.
    """
    if isinstance(node, dict):
        init = node.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            node['init_cfg'] = None
        if node.get('pretrained'):
            node['pretrained'] = None
        for value in node.values():
            strip_pretrained(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            strip_pretrained(value)


@contextmanager
def quiet_logs() -> Iterator[None]:
    """Silence mmengine's INFO logs (per-parameter initialisation,
    ``paramwise_options``) and Python warnings inside the block."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            yield
    finally:
        logger.setLevel(level)


def build_model(model_cfg: Any,
                device: str = 'cpu',
                scope: str = 'mmdet') -> 'torch.nn.Module':
    """Build and initialise a model from the registries (mmengine's
    per-parameter initialisation log is silenced).

    Args:
        model_cfg (dict): the ``model`` of a config (strip its pretrained
            weights first to stay offline).
        device (str): where the model goes.
        scope (str): the registry scope (the config's ``default_scope``).

    Returns:
        torch.nn.Module: the model on ``device``.
    """
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(copy.deepcopy(model_cfg))
    with quiet_logs():
        model.init_weights()
    return model.to(device)


def training_config(config: str) -> Optional[str]:
    """The config file to time for a config a plan names.

    Args:
        config (str): a config path (relative to the working directory or
            to the repository), or a step-time family's name
            (``<family>.py``, :data:`FAMILY_CONFIGS`).

    Returns:
        str, optional: an existing file, or None (nothing to time, e.g. a
        config an earlier stage writes).
    """
    from mmlesion.utils.configs.lookup import repo_root
    stem = osp.splitext(osp.basename(config))[0]
    candidates = [config] + ([FAMILY_CONFIGS[stem]]
                             if stem in FAMILY_CONFIGS else [])
    try:
        root: Optional[str] = str(repo_root())
    except FileNotFoundError:
        root = None
    for path in candidates:
        if osp.isfile(path):
            return path
        if root and not osp.isabs(path) and osp.isfile(osp.join(root, path)):
            return osp.join(root, path)
    return None


def load_training_config(config: str,
                         cfg_options: Sequence[str] = ()) -> 'Config':
    """A config with ``key=value`` options merged as ``tools/train.py``
    merges its ``--cfg-options`` (checked for typos).

    Args:
        config (str): config file.
        cfg_options (Sequence[str]): ``key=value`` strings.

    Returns:
        Config: the merged config.
    """
    from mmlesion.utils.configs.cfg_options import apply_cfg_options
    cfg = copy.deepcopy(parsed_config(config))
    if cfg_options:
        apply_cfg_options(cfg, parse_cfg_options(cfg_options), source=config)
    return cfg


def find_in_config(node: Any, match: Callable[[dict], Any]) -> Any:
    """The first non-None ``match(d)`` of the dicts in a nested config
    (depth first), or None.

    Args:
        node: a config, or any part of it.
        match (callable): dict -> value or None.
    """
    if isinstance(node, dict):
        found = match(node)
        if found is not None:
            return found
        node = list(node.values())
    if isinstance(node, (list, tuple)):
        for value in node:
            found = find_in_config(value, match)
            if found is not None:
                return found
    return None


def _transform(cfg: 'Config', type_name: str) -> Optional[dict]:
    return find_in_config(cfg.get('train_dataloader'),
                 lambda d: d if d.get('type') == type_name else None)


@dataclass(frozen=True)
class TrainingInput:
    """What one training step of a config takes.

    Args:
        kind (str): ``'2d'`` (images) or a method's kind (e.g. ``'3d'``
            crops; :data:`METHOD_BATCHES`).
        batch_size (int): items per step.
        shape (tuple[int, ...]): ``(C, H, W)`` of an image, ``(z, y, x)``
            of a crop or patch.
        unit (str): what one training item is (``'image'``, ``'crop'``).
        classes (int): labels are drawn from ``range(classes)``.
        masks (bool): a mask per box (a segmentation head's target).
        datasets (int): the datasets of a multi-dataset model (0: one).
    """
    kind: str
    batch_size: int
    shape: Tuple[int, ...]
    classes: int = 1
    masks: bool = False
    datasets: int = 0
    unit: str = 'image'


def _image_size(cfg: 'Config') -> Tuple[int, int]:
    """(H, W) a square DeepLesion slice has after the training Resize."""
    resize = _transform(cfg, 'Resize')
    if not resize or resize.get('scale') is None:
        side = DEFAULT_IMAGE_SIZE * float((resize or {}).get(
            'scale_factor') or 1.)
        return int(side), int(side)
    scale = resize['scale']
    if isinstance(scale, (int, float)):
        return int(scale), int(scale)
    width, height = (int(s) for s in scale)
    if resize.get('keep_ratio', False):
        return (min(width, height), ) * 2
    return height, width


def training_input(cfg: 'Config') -> TrainingInput:
    """The training input of a config (see the module doc).

    Args:
        cfg (Config): a loaded config.

    Returns:
        TrainingInput: its kind, batch size and shape.
    """
    batch = int(cfg.train_dataloader.get('batch_size') or 1)
    kind = cfg.model.get('type')
    if kind in METHOD_TRAINING_INPUTS:
        return METHOD_TRAINING_INPUTS[kind](cfg, batch)
    load = _transform(cfg, 'LoadDeepLesionSlices') or {}
    channels = load.get('num_slices') or cfg.model.get('backbone', {}).get(
        'in_channels') or 3
    classes = find_in_config(cfg.model, lambda d: d.get('num_classes')) or 1
    return TrainingInput(
        '2d', batch, (int(channels), *_image_size(cfg)),
        classes=int(classes),
        masks=bool(cfg.model.get('seg_head')),
        datasets=int(cfg.model.get('num_datasets') or 0))


def synthetic_batch(spec: TrainingInput, step: int) -> 'DataBatch':
    """A synthetic training batch (see the module doc).

    Args:
        spec (TrainingInput): what the step takes.
        step (int): seed of the batch (and of its dataset).

    Returns:
        DataBatch: ``inputs`` and ``data_samples`` for ``model.train_step``.
    """
    if spec.kind in METHOD_BATCHES:
        return METHOD_BATCHES[spec.kind](spec, step)
    import torch
    gen = torch.Generator().manual_seed(step)
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    channels, height, width = spec.shape
    inputs, samples = [], []
    for i in range(spec.batch_size):
        img = torch.rand(channels, height, width, generator=gen) * 0.2 - 0.6
        boxes = []
        for _ in range(1 + i % 3):
            w, h = (int(torch.randint(8, max(9, min(height, width) // 5),
                                      (1, ), generator=gen))
                    for _ in range(2))
            x1 = int(torch.randint(0, width - w, (1, ), generator=gen))
            y1 = int(torch.randint(0, height - h, (1, ), generator=gen))
            img[:, y1:y1 + h, x1:x1 + w] += 0.8
            boxes.append([x1, y1, x1 + w, y1 + h])
        gt = InstanceData(
            bboxes=torch.tensor(boxes, dtype=torch.float32),
            labels=torch.randint(0, spec.classes, (len(boxes), ),
                                 generator=gen))
        if spec.masks:
            masks = torch.zeros(len(boxes), height, width, dtype=torch.bool)
            for m, (x1, y1, x2, y2) in zip(masks, boxes):
                m[y1:y2, x1:x2] = True
            gt.masks = masks
        sample = DetDataSample(
            metainfo=dict(
                img_id=step * spec.batch_size + i,
                img_shape=(height, width),
                ori_shape=(height, width),
                pad_shape=(height, width),
                scale_factor=(1.0, 1.0)))
        if spec.datasets:
            sample.set_metainfo(dict(dataset_id=step % spec.datasets))
        sample.gt_instances = gt
        inputs.append(img)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def time_training_step(config: str,
                       cfg_options: Sequence[str] = (),
                       device: str = 'cpu',
                       iters: int = 5,
                       warmup: int = 2,
                       seed: int = 0) -> float:
    """Seconds per training item of ``config`` on ``device``.

    Args:
        config (str): config file.
        cfg_options (Sequence[str]): ``key=value`` options merged first
            (as ``--cfg-options``).
        device (str): e.g. ``'cpu'``, ``'cuda'``, ``'cuda:1'``.
        iters (int): timed training steps (>= 1).
        warmup (int): untimed training steps first (>= 0).
        seed (int): torch seed of the random weights.

    Returns:
        float: the median step time over the batch size.

    Raises:
        ValueError: bad ``iters`` / ``warmup``, or a config without an
            optimiser (a search config).
    """
    import torch
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope

    if iters < 1 or warmup < 0:
        raise ValueError(f'iters={iters} must be >= 1 and warmup={warmup} '
                         '>= 0')
    cfg = load_training_config(config, cfg_options)
    spec = training_input(cfg)
    optim_cfg = copy.deepcopy(cfg.get('optim_wrapper'))
    if not optim_cfg or not optim_cfg.get('optimizer'):
        raise ValueError(f'{config}: no optim_wrapper.optimizer to time')
    cuda = str(device).startswith('cuda')
    if optim_cfg.get('type') == 'AmpOptimWrapper' and not cuda:
        # mixed precision needs a GPU: the CPU times the fp32 step
        optim_cfg = dict(
            {k: v for k, v in optim_cfg.items()
             if k not in ('loss_scale', 'dtype', 'use_fsdp')},
            type='OptimWrapper')
    model_cfg = copy.deepcopy(cfg.model)
    strip_pretrained(model_cfg)
    scope = cfg.get('default_scope') or 'mmdet'
    torch.manual_seed(seed)
    model = build_model(model_cfg, device, scope)
    model.train()
    with DefaultScope.overwrite_default_scope(scope), quiet_logs():
        optim = build_optim_wrapper(model, optim_cfg)
    times = []
    try:
        with quiet_logs():
            for step in range(warmup + iters):
                batch = synthetic_batch(spec, step)
                if cuda:  # the queued work of the step before is not ours
                    torch.cuda.synchronize()
                start = time.perf_counter()
                model.train_step(batch, optim)
                if cuda:
                    torch.cuda.synchronize()
                if step >= warmup:
                    times.append(time.perf_counter() - start)
    finally:
        del model, optim
        if cuda:
            torch.cuda.empty_cache()
    return statistics.median(times) / spec.batch_size


def device_name(device: str) -> str:
    """What a plan calls the timing device: the GPU's name, or the CPU's
    model and torch's thread count.

    Args:
        device (str): e.g. ``'cpu'``, ``'cuda'``.

    Returns:
        str: e.g. ``'NVIDIA H100 80GB HBM3'``, ``'AMD EPYC 7B13, 2
        threads'``.
    """
    import platform

    import torch
    if str(device).startswith('cuda'):
        return torch.cuda.get_device_name(torch.device(device))
    model = platform.processor() or 'unknown model'
    try:
        with open('/proc/cpuinfo') as f:
            model = next((line.split(':', 1)[1].strip() for line in f
                          if line.startswith('model name')), model)
    except OSError:
        pass
    return f'{model}, {torch.get_num_threads()} threads'


@dataclass
class StepTimer:
    """A step-time source for :func:`~.estimate.step_times`: each
    distinct config is timed once on ``device`` (with ``cfg_options``).

    A config that cannot be timed (no file: a config an earlier stage
    writes; or its model fails to build or train on this device) keeps
    its shipped H100 step time, with the reason in the step time's
    ``note``.

    Args:
        device (str): where to time (``'cpu'``, ``'cuda'``, ...).
        iters (int): timed steps per config.
        warmup (int): untimed steps first.
        cfg_options (Sequence[str]): ``key=value`` options merged into
            every config (the run's ``--cfg-options``).
        stream (TextIO, optional): where a line per timed config goes
            (default: standard error).
        name (str, optional): the device's name in the plan (default:
            :func:`device_name`).
    """

    device: str = 'cpu'
    iters: int = 5
    warmup: int = 2
    cfg_options: Sequence[str] = ()
    stream: Optional[TextIO] = None
    name: Optional[str] = None

    def __post_init__(self) -> None:
        self.cfg_options = tuple(self.cfg_options)
        self.source = (f'{self.iters} timed iteration'
                       f'{"s" * (self.iters != 1)} on '
                       f'{self.name or device_name(self.device)}')
        self._cache: Dict[Tuple[str, Tuple[str, ...]], Tuple[float,
                                                             str]] = {}

    @property
    def on_gpu(self) -> bool:
        """Whether the hours are GPU-hours (else the CPU's)."""
        return str(self.device).startswith('cuda')

    def _log(self, text: str, end: str = '\n') -> None:
        stream = self.stream or sys.stderr
        stream.write(text + end)
        stream.flush()

    def _time(self, path: str) -> Tuple[float, str]:
        self._log(f'timing [{len(self._cache) + 1}] {path} on {self.device} '
                  f'({self.warmup} warm-up + {self.iters} timed) ...',
                  end=' ')
        try:
            # looked up here, so that a test can replace it
            seconds = time_training_step(path, self.cfg_options, self.device,
                                         self.iters, self.warmup)
        except Exception as err:  # noqa: B902  (the plan says why)
            why = f'{type(err).__name__}: {err}'.splitlines()[0][:200]
            self._log(f'not timed ({why}); the shipped step time is used')
            return 0., why
        self._log(f'{seconds * 1000:.1f} ms per training item')
        return seconds, ''

    def __call__(self, config: str) -> StepTime:
        """The step time of ``config``: timed, or shipped with a note."""
        path = training_config(config)
        if path is None:
            return shipped_step_time(config, f'{config}: no config file to '
                                     'time yet')
        key = (osp.normpath(osp.abspath(path)), self.cfg_options)
        if key not in self._cache:
            self._cache[key] = self._time(path)
        seconds, why = self._cache[key]
        if why:
            return shipped_step_time(config, f'{osp.basename(path)}: {why}')
        return StepTime(config, seconds, self.source, timed=True)
