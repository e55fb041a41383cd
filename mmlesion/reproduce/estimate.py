# Copyright (c) mmlesion contributors. All rights reserved.
"""Hours of a training: seconds per training item times the work.

The work of a training is epochs x training images (2D) or epochs x
iterations x crops (3D). The seconds per item come from the active
*step-time source*:

- by default the step times the benchmarks measured on one H100 80GB
  (fp32, random weights, batch 1; the commands are in
  ``docs/benchmarks.md``), shipped here in
  :data:`SECONDS_PER_TRAINING_ITEM`: every one of them names its source;
- inside :func:`step_times`, any other source, e.g. a few training steps
  timed on the present device (:class:`~.timing.StepTimer`); the hours
  are then those of that device.

The numbers are estimates for planning (GPU, data loading and batch size
all move them).
"""
import math
import os.path as osp
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional

#: seconds per training image (2D) or training crop (3D) on one H100,
#: fp32, from ``projects/benchmarks/benchmark_*.py --device cuda``.
SECONDS_PER_TRAINING_ITEM = {
    # benchmark_elixirnet.py: 77.7 ms (ElixirNet-FPN), 50.9 ms (Faster
    # R-CNN R50-FPN) per training image, 3 x 512 x 512
    'elixirnet': 0.0777,
    'faster-rcnn': 0.0509,
    # benchmark_retinanet_lesion.py measured inference only (9.6 ms for
    # the full Improved RetinaNet); training taken as 3.03x inference, the
    # ratio benchmark_elixirnet.py measured for Faster R-CNN (50.9 / 16.8)
    'retinanet': 0.0096 * 3.03,
    # benchmark_lens.py: 28.7 ms per 9-slice image with 4 experts,
    # inference; training taken as 3.03x as above
    'lens': 0.0287 * 3.03,
    # LENS's 3D FPR network, per 8 x 64 x 64 patch: 0.8 ms, timed by
    # ``tools/reproduce.py lens/table1 --dry-run --time-iters 5`` on one
    # H100 80GB (batch 32 patches, fp32)
    'lens-fpr': 0.0008,
    # benchmark_aggregated3d.py --cases train_full: 0.105 s per 128^3 crop
    # (full model), train_rpn 0.039 s
    'aggregated3d': 0.105,
    'rpn3d': 0.039,
}

#: CPU seconds per training image of Faster R-CNN R18-FPN (3 slices,
#: 256 x 256 px, batch 2, one thread, random weights, forward + backward +
#: SGD step, the mean of 4 steps) on one core of a 2-core AMD EPYC virtual
#: machine: ``OMP_NUM_THREADS=1 python
#: projects/benchmarks/benchmark_cpu_train_step.py --depth 18 --side 256``.
#: ``tools/plan_dataset.py --device cpu --budget-minutes`` plans with it
#: (one core's worth: more cores train faster than planned).
CPU_SECONDS_PER_TRAINING_IMAGE = dict(depth=18, pixels=256 * 256,
                                      seconds=1.16)

#: LENS FPR patches per annotated training lesion (TP : FP = 1 : 2)
FPR_PATCHES_PER_LESION = 3

#: training images of the published splits, used when the data are not
#: on this machine (ElixirNet Sec. 4: 22,919 DeepLesion training images;
#: 13,147 KiTS19 training images; DeepLesion's val split has 4,889 typed
#: lesions, the multi-type fine-tuning set)
PAPER_TRAINING_ITEMS = {
    'deeplesion': 22919,
    'kits19': 13147,
    'deeplesion-val': 4889,
    # LENS's FPR network: an epoch is every TP proposal and twice as many
    # FPs (Sec. VI-B); about one TP per annotated training lesion (32,735
    # lesions less 4,889 val and 4,927 test = 22,919), mined lesions not
    # counted
    'deeplesion-fpr': FPR_PATCHES_PER_LESION * 22919,
}

#: 3D-AG: about 2,400 training iterations of one crop per epoch and fold
#: (LUNA16, 9 of 10 subsets), as the configs sample crops
LUNA16_ITEMS_PER_EPOCH = 2400


#: what a plan says of the shipped step times
SHIPPED_SOURCE = 'shipped H100 step times'


@dataclass(frozen=True)
class StepTime:
    """Seconds per training item of a config, and where they come from.

    Args:
        config (str): the config the plan asked about.
        seconds (float): seconds per training image (2D) or crop (3D).
        source (str): e.g. ``'shipped H100 step times'`` or ``'5 timed
            iterations on NVIDIA H100 80GB HBM3'``.
        timed (bool): measured on the present device (not shipped).
        note (str): why a config that was to be timed was not (empty
            otherwise).
    """
    config: str
    seconds: float
    source: str = SHIPPED_SOURCE
    timed: bool = False
    note: str = ''


#: a step-time source: config -> its step time
StepTimeSource = Callable[[str], StepTime]


def family(config: str) -> str:
    """The step-time family of a config, by its file name."""
    name = osp.basename(config)
    for key in ('rpn3d', 'aggregated3d', 'retinanet', 'lens-fpr', 'lens',
                'mulan', 'elixirnet', 'faster-rcnn'):
        if key in name:
            return {'mulan': 'lens'}.get(key, key)
    raise ValueError(f'{config}: no shipped step time for this kind of '
                     'config')


def count_training_images(data_root: Optional[str],
                          ann_file: str = 'DL_info.csv',
                          lesions: bool = False) -> Optional[int]:
    """Training key slices (or, with ``lesions``, annotated training
    lesions: rows) of a DeepLesion-layout root, or None when it is not
    there."""
    if not data_root or not osp.isfile(osp.join(data_root, ann_file)):
        return None
    from mmlesion.datasets.deeplesion.dl_info import parse_dl_info
    recs = [r for r in parse_dl_info(osp.join(data_root, ann_file))
            if r.split == 1]
    return (len(recs) if lesions else len({r.file_name
                                            for r in recs})) or None


def training_items(data_root: Optional[str], dataset: str) -> int:
    """Training items per epoch: images (2D detectors) or, for LENS's FPR
    network (``deeplesion-fpr``), patches: :data:`FPR_PATCHES_PER_LESION`
    per annotated training lesion. Counted in the data when they are at
    ``data_root``, otherwise the published split's
    (:data:`PAPER_TRAINING_ITEMS`)."""
    if dataset == 'deeplesion-fpr':
        lesions = count_training_images(data_root, lesions=True)
        return (FPR_PATCHES_PER_LESION * lesions if lesions else
                PAPER_TRAINING_ITEMS[dataset])
    counted = count_training_images(data_root) if dataset in (
        'deeplesion', 'kits19') else None
    return counted or PAPER_TRAINING_ITEMS[dataset]


def shipped_step_time(config: str, note: str = '') -> StepTime:
    """The shipped H100 step time of a config's family.

    Args:
        config (str): a config path or a family's name (``rpn3d.py``).
        note (str): why it was not timed, when it was to be.

    Returns:
        StepTime: from :data:`SECONDS_PER_TRAINING_ITEM`.
    """
    return StepTime(config, SECONDS_PER_TRAINING_ITEM[family(config)],
                    note=note)


_SOURCES: List[StepTimeSource] = [shipped_step_time]
_LOOKED_UP: List[List[StepTime]] = []


@contextmanager
def step_times(source: StepTimeSource) -> Iterator[List[StepTime]]:
    """Take the step times of :func:`training_gpu_hours` from ``source``
    inside the block (e.g. while the rows of a plan are built).

    Args:
        source (callable): config -> :class:`StepTime`.

    Yields:
        list[StepTime]: every step time looked up inside the block, in
        order (the rows built between two lengths of it used those).
    """
    looked_up: List[StepTime] = []
    _SOURCES.append(source)
    _LOOKED_UP.append(looked_up)
    try:
        yield looked_up
    finally:
        _SOURCES.pop()
        _LOOKED_UP.pop()


def step_time(config: str) -> StepTime:
    """The step time of ``config`` from the active source (the shipped
    H100 step times outside :func:`step_times`)."""
    found = _SOURCES[-1](config)
    for looked_up in _LOOKED_UP:
        looked_up.append(found)
    return found


def training_gpu_hours(config: str, epochs: int, items: int) -> float:
    """Estimated hours of ``epochs`` over ``items`` training items.

    GPU-hours with the shipped step times or times taken on a GPU; hours
    of the timing device otherwise (:func:`step_times`).
    """
    return epochs * items * step_time(config).seconds / 3600.0


def round_hours(hours: float) -> float:
    """Two significant figures (an estimate, not a measurement)."""
    if hours <= 0:
        return 0.0
    digits = 1 - int(math.floor(math.log10(hours)))
    return round(hours, max(digits, 0))
