# Copyright (c) mmlesion contributors. All rights reserved.
"""What ``benchmark_gpu_run.py`` measures and at which sizes: its parts
(:data:`PARTS`), their sub-steps (:func:`sub_steps`: the record keeps one
summary each) and the plans (:class:`Plan`: :data:`FULL` on a GPU,
:data:`TINY` for the CPU rehearsal) with each part's time budget.
"""
import copy
import dataclasses
from typing import List, Mapping, Optional, Tuple

#: The parts, in the order they run.
PARTS = ('amp_compare', 'whole_scan', 'infer_scans', 'aggregated3d',
         'train_steps', 'data_loading')
MMDET_FASTER_RCNN = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A config whose training step is timed.

    Args:
        name (str): its row in the table.
        config (str): the config file (from the repository root).
        model_from (str, optional): time this config's model instead
            (``mmdet::...`` or a path under ``configs/``; one class, no
            pretrained weights) on ``config``'s input and optimiser: the
            baseline.
    """
    name: str
    config: str
    model_from: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class LoadingConfig:
    """A config whose training pipeline is timed per worker.

    Args:
        name (str): its row (the :class:`TrainConfig` of the same name
            gives the step time).
        config (str): the config file.
        recist_cache (bool): RECIST masks read from their cache, as
            ``docs/benchmarks.md`` tells users to train Improved RetinaNet.
    """
    name: str
    config: str
    recist_cache: bool = False


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the run measures and how big.

    Args:
        name (str): ``'full'`` or ``'tiny'``.
        detector_config (str): the 2.5D detector of the whole-scan parts.
        pixel_spacing (float): mm/px its slices are resampled to.
        scan_size (tuple): synthetic scans, in-plane pixels and slices.
        num_scans (int): how many (>= 2: a batch overlaps two).
        batch_size (int): slices per forward pass.
        repeats (int): timed rounds of the whole-scan parts.
        findings_per_scan (int): findings the prepared weights keep at
            their operating point (on the first scan).
        train (tuple[TrainConfig]): the training steps timed.
        train_iters (int): timed steps per config.
        train_warmup (int): untimed steps first.
        loading (tuple[LoadingConfig]): the pipelines timed.
        loading_samples (int): timed samples per config.
        loading_warmup (int): untimed samples first.
        agg3d_config (str): the 3D Aggregated Faster R-CNN config.
        agg3d_scan_size (tuple): its scan, slices and in-plane voxels.
        agg3d_repeats (int): its timed rounds (after one warm-up).
        budgets (dict): seconds each part (and ``prepare``) may take.
    """
    name: str
    detector_config: str
    pixel_spacing: float
    scan_size: Tuple[int, int]
    num_scans: int
    batch_size: int
    repeats: int
    findings_per_scan: int
    train: Tuple[TrainConfig, ...]
    train_iters: int
    train_warmup: int
    loading: Tuple[LoadingConfig, ...]
    loading_samples: int
    loading_warmup: int
    agg3d_config: str
    agg3d_scan_size: Tuple[int, int]
    agg3d_repeats: int
    budgets: Mapping[str, float]


_E = 'configs/elixirnet/'
_L = 'configs/lens/'
_R = 'configs/retinanet_lesion/'
_FULL_2D = (
    ('Faster R-CNN R50-FPN, 3 slices',
     _E + 'faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py'),
    ('ElixirNet, 3 slices',
     _E + 'elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py'),
    ('ElixirNet, 9 slices',
     _E + 'elixirnet-fig3geno_r50-9ch_fpn_4xb2-1x_deeplesion-9slice.py'),
    ('Improved RetinaNet VGG-19',
     _R + 'improved-retinanet_vgg19_densefpn-ag_1xb4-adam-plateau-50e_'
     'deeplesion.py'),
    ('RetinaNet VGG-19',
     _R + 'retinanet_vgg19_fpn_1xb4-adam-plateau-50e_deeplesion.py'),
    ('MULAN', _L + 'mulan_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-'
     '9slice.py'),
    ('LENS, 1 expert', _L + 'lens-afp_densenet121-2.5d_fpn_1xb4-radam-8e_'
     'deeplesion-9slice.py'),
    ('LENS, 4 experts', _L + 'lens-afp-multi-fusion-mining_densenet121-'
     '2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice.py'),
)
#: The GPU run: full-size models, a 300 x 512 x 512 scan. The budgets add
#: up to 530 s (the parts measured about 300 s in the estimate of their
#: sizes from the H100 figures of docs/benchmarks.md).
FULL = Plan(
    name='full',
    detector_config=_FULL_2D[1][1],
    pixel_spacing=.8,
    scan_size=(512, 300),
    num_scans=2,
    batch_size=32,
    repeats=2,
    findings_per_scan=20,
    train=(TrainConfig("mmdet's Faster R-CNN R50-FPN", _FULL_2D[0][1],
                       MMDET_FASTER_RCNN), ) +
    tuple(TrainConfig(n, c) for n, c in _FULL_2D),
    train_iters=10,
    train_warmup=3,
    loading=tuple(LoadingConfig(n, c, 'improved-retinanet' in c)
                  for n, c in _FULL_2D),
    loading_samples=26,
    loading_warmup=2,
    agg3d_config='configs/aggregated3d/aggregated3d_denseunet3d_anchor1_'
    '4xb2-50e_luna16.py',
    agg3d_scan_size=(300, 512),
    agg3d_repeats=3,
    budgets=dict(prepare=40, amp_compare=45, whole_scan=110,
                 infer_scans=100, aggregated3d=55, train_steps=100,
                 data_loading=80))
_TINY_ELIXIRNET = _E + 'demo/elixirnet_r18-tiny_fpn_1x_deeplesion-demo.py'
#: The CPU rehearsal: the demo-size models, two 48 x 48 x 12 scans, one
#: or two iterations; every part and sub-step of :data:`FULL` but AMP.
TINY = Plan(
    name='tiny',
    detector_config='configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py',
    pixel_spacing=1.4,
    scan_size=(48, 12),
    num_scans=2,
    batch_size=4,
    repeats=1,
    findings_per_scan=3,
    train=(TrainConfig("mmdet's Faster R-CNN R18-FPN, demo size",
                       _E + 'demo/faster-rcnn_r18-tiny_fpn_1x_deeplesion-'
                       'demo.py', 'demo/faster-rcnn_r18_fpn_36e_deeplesion-'
                       'demo.py'),
           TrainConfig('ElixirNet, demo size', _TINY_ELIXIRNET)),
    train_iters=1,
    train_warmup=1,
    loading=(LoadingConfig('ElixirNet, demo size', _TINY_ELIXIRNET), ),
    loading_samples=2,
    loading_warmup=1,
    agg3d_config='configs/aggregated3d/demo/aggregated3d_denseunet3d-tiny_'
    'luna16-demo.py',
    agg3d_scan_size=(24, 40),
    agg3d_repeats=2,
    budgets={name: 120 for name in ('prepare', ) + PARTS})
PLANS = dict(full=FULL, tiny=TINY)


def sub_steps(plan: Plan, name: str, device: str) -> List[str]:
    """The sub-steps a part records when it is complete."""
    cuda = device.startswith('cuda')
    return dict(
        amp_compare=['scans'],
        whole_scan=['fp32', 'amp'] if cuda else ['fp32'],
        infer_scans=['batch'],
        aggregated3d=['amp', 'fp32'] if cuda else ['fp32'],
        train_steps=[t.name for t in plan.train],
        data_loading=[c.name for c in plan.loading])[name]


def plan_record(plan: Plan) -> dict:
    """The plan as the record stores it (a re-run must have the same)."""
    out = dataclasses.asdict(plan)
    out['budgets'] = dict(plan.budgets)
    return copy.deepcopy(out)
