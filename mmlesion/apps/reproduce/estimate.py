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
from typing import Callable, Iterator, List, Mapping, Optional

from .paper_tables import paper_view

#: step-time family (a word of config file names) -> seconds per training
#: image (2D) or crop (3D) on one H100, fp32, from
#: ``projects/benchmarks/benchmark_*.py --device cuda``: each registered
#: method's ``step_times`` (its source beside each number)
SECONDS_PER_TRAINING_ITEM: Mapping[str, float] = paper_view('step_times')

#: CPU seconds per training image of Faster R-CNN R18-FPN (3 slices,
#: batch 2, one thread, random weights, forward + backward + SGD step):
#: ``fixed_seconds + seconds_per_pixel * pixels`` (the fields of
#: :class:`~mmlesion.apps.own_data.plan_schedule.TimeBudget`), least squares
#: over the means of 4 steps (after an untimed one) at 64, 96, 128, 256 and 512
#: px sides (0.93, 0.93, 1.01, 1.59, 3.18 s) on one core of a 2-core Intel
#: Xeon virtual machine:
#: ``OMP_NUM_THREADS=1 python projects/benchmarks/benchmark_cpu_train_step.py
#: --depth 18 --sides 64 96 128 256 512``. The fixed part is mostly the RoI
#: head's (512 sampled RoIs an image whatever its size).
#: ``tools/plan_dataset.py --device cpu --budget-minutes`` plans with it
#: (one core's worth: more cores train faster than planned).
CPU_SECONDS_PER_TRAINING_IMAGE = dict(backbone_depth=18, fixed_seconds=.899,
                                      seconds_per_pixel=8.8e-6)
#: The same for the narrower heads a CPU plan trains on patches with (64
#: FPN, RPN and RoI channels, RoI FCs of 256, 128 sampled RoIs an image),
#: timed in the planned training itself: the CPU seconds of ``tools/train.py``
#: on ``known_truth.py --anatomy real --patients 8`` 's plan run for 46 and
#: 230 iterations (``--cfg-options max_iters=N``), their difference: 0.101 s
#: an image at 128 px, 0.153 s at 192 px, ``OMP_NUM_THREADS=1``, one core
#: of a 2-core AMD EPYC (random images gave 0.158 s at 128 px: too high).
CPU_SECONDS_PER_TRAINING_PATCH = dict(backbone_depth=18, fixed_seconds=.0595,
                                      seconds_per_pixel=2.54e-6)

#: training images of the published splits, used when the data are not
#: on this machine (the official splits: 22,919 DeepLesion training images;
#: 13,147 KiTS19 training images; DeepLesion's val split has 4,889 typed
#: lesions, the multi-type fine-tuning set)
PAPER_TRAINING_ITEMS = {'deeplesion': 22919, 'kits19': 13147,
                        'deeplesion-val': 4889}
#: a method's own training sets: dataset name -> data root (or None) ->
#: items per epoch (each registered method's ``training_items``)
METHOD_TRAINING_ITEMS: Mapping[str, Callable[[Optional[str]], int]] = \
    paper_view('training_items')

#: LUNA16 10-fold cross-validation: about 2,400 training iterations of one
#: crop per epoch and fold (9 of 10 subsets), as the 3D configs sample crops
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
    """The step-time family of a config: the longest family name of
    :data:`SECONDS_PER_TRAINING_ITEM` in its file name.

    Raises:
        ValueError: no registered method's ``step_times`` names a word of
            the file name.
    """
    name = osp.basename(config)
    found = [key for key in SECONDS_PER_TRAINING_ITEM if key in name]
    if not found:
        raise ValueError(
            f'{config}: no shipped step time for this kind of config; its '
            "method's PaperTables.step_times names none of "
            f'{sorted(SECONDS_PER_TRAINING_ITEM)} (docs/adding_a_method.md)')
    return max(found, key=len)


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
    """Training items per epoch: images (2D detectors), or what a
    method's own training set counts (:data:`METHOD_TRAINING_ITEMS`).
    Counted in the data when they are at ``data_root``, otherwise the
    published split's (:data:`PAPER_TRAINING_ITEMS`)."""
    if dataset in METHOD_TRAINING_ITEMS:
        return METHOD_TRAINING_ITEMS[dataset](data_root)
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
