# Copyright (c) mmlesion contributors. All rights reserved.
"""Start a study row from another row's trained backbone and FPN.

The Improved RetinaNet paper (Zlocha et al. 2019, Sec. 3.1) starts its
VGG-19 from ImageNet weights; the demo-sized study has none (no network at
run time, a 16-channel ResNet-18 that no public checkpoint fits). On the
study data a one-stage detector trained from random initialisation stays at
the FROC floor within a CPU budget, while the two-stage Faster R-CNN of the
same backbone learns (``configs/retinanet_lesion/README.md``, "Why the demo
RetinaNet stays at the floor"). The stand-in for ImageNet weights is then a
*detection* pre-training on the study's own training split: a study row
that trains the demo Faster R-CNN, whose backbone and FPN every later row
of the same seed loads before fine-tuning everything.

Choices (the paper has no such step; each is said where it is made):

- what is loaded: ``backbone.*`` and ``neck.*`` (strictly the names of an
  mmdet ``FPN`` with ``start_level=0``); anything else of the row (heads,
  the dense path and attention gates of ``DenseFPN``, an FPN extra conv)
  keeps its own initialisation. mmengine's ``Pretrained`` init runs after
  the module's other inits, so those keep their usual scheme;
- a RetinaNet ``FPN`` starting at C3 (``start_level=1``, P3-P7) is moved to
  C2 (P2-P6, as the paper's dense rows): only then does each loaded
  lateral / output conv see the level it was trained on. The anchors keep
  their sizes (e.g. 32..512) on the new strides, as the paper keeps them
  when its dense rows move to P2-P6;
- the input window of every ``WindowHU`` becomes the pre-training config's:
  a pre-trained backbone expects the input normalisation it was trained
  with, as ImageNet weights expect ImageNet's mean and std.
"""
import dataclasses
import os.path as osp
from typing import Callable, Optional, Sequence, Tuple

from mmengine.config import Config, ConfigDict

from mmlesion.utils.writing.atomic import atomic_write_json
from mmlesion.utils.checkpoints.checksum import sha256_file
from projects.study_demo.study.rows import RowContext, StudyRow
from projects.study_demo.study.row_run import final_checkpoint
from projects.study_demo.study.runner import load_row_config, row_seed_dir

#: Pyramid of the loaded FPN: C2..C5 -> P2..P6.
P2_P6_STRIDES: Tuple[int, ...] = (4, 8, 16, 32, 64)
#: Written into the row/seed folder: which checkpoint the row started from.
START_FILE = 'pretrained_start.json'


def config_window(cfg: Config) -> Tuple[float, float]:
    """The HU window of a config's ``WindowHU`` transforms (all loaders).

    Raises:
        ValueError: the config has no ``WindowHU`` or two different windows.
    """
    windows = set()
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for t in _pipeline(cfg, loader):
            if t.get('type') == 'WindowHU':
                windows.add(tuple(float(v) for v in t['window']))
    if len(windows) != 1:
        raise ValueError('the pre-training config must window its input '
                         f'with one WindowHU window, found {sorted(windows)}')
    return windows.pop()


def _pipeline(cfg: Config, loader: str) -> list:
    """The transforms of a loader's dataset (inside wrappers); the dicts
    are the config's own, so changing them changes the config."""
    from mmlesion.anchors.box_sources import dataset_pipeline
    return dataset_pipeline(cfg.get(loader, {}).get('dataset', {}))


def last_checkpoint(settings, key: str, config: str, seed: int) -> str:
    """The last checkpoint of study row ``key`` (config ``config``) for
    ``seed``: ``{work_dir}/{key}/seed_{seed}/epoch_{max_epochs}.pth``.

    Raises:
        FileNotFoundError: that row/seed was not trained yet.
    """
    epochs = settings.max_epochs or load_row_config(
        config).train_cfg.max_epochs
    try:
        return final_checkpoint(
            row_seed_dir(settings, StudyRow(key, '', ''), seed), epochs, key)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f'the pre-training row {key!r} (seed {seed}), the first row of '
            f'the table: {err}') from None


def start_from_detector(cfg: Config, checkpoint: str,
                        window: Sequence[float]) -> Config:
    """Make ``cfg`` load ``checkpoint``'s backbone and FPN (see the module
    docstring for every choice).

    Args:
        cfg (Config): a row config with ``model.backbone`` and
            ``model.neck`` (an mmdet ``FPN`` or a subclass).
        checkpoint (str): the detector checkpoint (an mmengine ``.pth``).
        window (Sequence[float]): the pre-training input window (HU).

    Returns:
        Config: ``cfg``, modified in place.

    Raises:
        ValueError: the neck is not an FPN the checkpoint's can fill.
    """
    from mmlesion.anchors.anchor_config import AnchorConfig
    model = cfg.model
    neck = model.neck
    if neck.get('type') not in ('FPN', 'mmdet.FPN', 'DenseFPN'):
        raise ValueError(f'start from a detector: the neck must be an FPN '
                         f'(or DenseFPN), got {neck.get("type")!r}')
    start = neck.get('start_level', 0)
    if start not in (0, 1):
        raise ValueError(f'start from a detector: FPN start_level {start}')
    if start == 1:
        neck.start_level = 0
        head = model.bbox_head
        anchors = AnchorConfig.from_generator_cfg(head.anchor_generator)
        anchors = dataclasses.replace(anchors, strides=P2_P6_STRIDES)
        head.anchor_generator = ConfigDict(anchors.to_generator_cfg())
    model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint=checkpoint, prefix='backbone.')
    own = neck.get('init_cfg') or dict(
        type='Xavier', layer='Conv2d', distribution='uniform')
    own = list(own) if isinstance(own, (list, tuple)) else [own]
    neck.init_cfg = own + [
        dict(type='Pretrained', checkpoint=checkpoint, prefix='neck.')
    ]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for t in _pipeline(cfg, loader):
            if t.get('type') == 'WindowHU':
                t['window'] = tuple(float(v) for v in window)
    return cfg


def pretrained_start_step(
    source: StudyRow,
    then: Optional[Callable[[Config, RowContext], Optional[Config]]] = None
) -> Callable[[Config, RowContext], Config]:
    """A row pre-step: start from ``source``'s last checkpoint (same seed),
    then run the row's own pre-step ``then`` (e.g. anchor optimisation, which
    then sees the moved pyramid).

    The checkpoint's path and SHA-256 go to ``<row dir>/`` :data:`START_FILE`.
    When the row is only tested (``ctx.train`` False) nothing is loaded:
    its own checkpoint holds every weight; the pyramid and window are still
    moved so that the model fits that checkpoint.

    Args:
        source (StudyRow): the pre-training row (a two-stage detector with an
            FPN from C2) that runs before this row in the same study.
        then (callable, optional): the row's own pre-step.

    Returns:
        callable: ``step(cfg, ctx) -> cfg``, a :class:`StudyRow` ``prepare``.
    """
    window = config_window(load_row_config(source.config))

    def step(cfg: Config, ctx: RowContext) -> Config:
        checkpoint = last_checkpoint(ctx.settings, source.key, source.config,
                                     ctx.seed)
        start_from_detector(cfg, checkpoint, window)
        if ctx.train:
            atomic_write_json(
                osp.join(ctx.row_dir, START_FILE),
                dict(row=source.key, seed=ctx.seed, checkpoint=checkpoint,
                     sha256=sha256_file(checkpoint), window=list(window)),
                indent=1)
        else:
            cfg.model.backbone.init_cfg = None
            cfg.model.neck.init_cfg = None
        if then is not None:
            cfg = then(cfg, ctx) or cfg
        return cfg

    return step
