# Copyright (c) mmlesion contributors. All rights reserved.
"""A 2.5D detector's input convention for whole scans, read from its config
(:func:`volume_settings_from_config`; docs/infer_volume.md, "Slice
interval and pixel spacing"), and the options of a run.

The slice interval and the pixel spacing each come from the first source
that gives it (``settings.sources`` in ``findings.json``): ``'option'``,
``'checkpoint'`` (:class:`~mmlesion.engine.hooks.DataConventionHook`'s
record), ``'config'`` (the test pipeline) or ``'default'``. The test
pipeline is kept with :class:`~mmlesion.datasets.transforms.
LoadVolumeSlices` as its loader and without its resizes and annotations:
the volume is resampled to the pixel spacing instead.
"""
import copy
import inspect
import logging
import math
import numbers
from dataclasses import dataclass, field
from typing import (Any, Callable, Dict, List, Mapping, Optional, Protocol,
                    Sequence, Tuple, runtime_checkable)

import numpy as np
import torch
from mmcv.transforms import Compose
from mmdet.datasets.transforms import PackDetInputs
from mmengine.config import Config
from mmengine.logging import print_log

from mmlesion.datasets.transforms.data_convention import (  # noqa: F401
    DATA_CONVENTION_KEY, DEFAULT_INTERVAL_MM, DEFAULT_PIXEL_SPACING,
    positive_or_none, pipeline_convention)
from mmlesion.datasets.volumes import CTVolume
from mmlesion.datasets.volumes.scan_switches import ScanChecks
from mmlesion.evaluation.functional.box_stacking import StackSettings
from mmlesion.evaluation.functional.operating_points import \
    LESION_STEP_NAMES
from mmlesion.structures.finding_3d import Finding3D
from mmlesion.utils.distributed.forked_call import fork_available, usable_cpus
from mmlesion.utils.tool_defaults import tool_defaults

#: The defaults ``tools/infer_volume.py --help`` shows
#: (``tool_defaults.json``, :mod:`mmlesion.utils.tool_defaults`).
_SHOWN = tool_defaults(__file__)
_DETECTION = _SHOWN['DetectionSettings']
#: FPs per validation unit of the operating point a run keeps findings at
#: by default (4: the DeepLesion papers' headline rate).
DEFAULT_FP_RATE = _SHOWN['RunSettings']['fp_rate']
#: FPs per scan of the per-scan operating point a run keeps findings at by
#: default where the checkpoint records one (4: the rate the known-truth
#: checks hold).
DEFAULT_FP_PER_SCAN = _SHOWN['RunSettings']['fp_per_scan']
#: What may run a detector's convolutions (:attr:`RunSettings.backend`).
BACKENDS = tuple(_SHOWN['BACKENDS'])
#: The :class:`DetectionSettings` that turn chains of boxes into lesions,
#: chosen together with a per-scan operating point.
LESION_STEPS = LESION_STEP_NAMES
#: ``pixel_spacing_source`` (the older field) of each source.
_PIXEL_SPACING_SOURCE = dict(option='argument', checkpoint='checkpoint',
                             config='ResampleToSpacing', default='default')
#: Test-pipeline transforms dropped for volumes (see the module doc).
_DROPPED = ('Resize', 'RandomResize', 'FixShapeResize', 'LoadAnnotations',
            'RandomFlip', 'LoadRecistPoints')


@dataclass
class VolumeInferenceSettings:
    """How a 2.5D config wants its input, read from its test pipeline.

    Args:
        num_slices (int): input slices (channels).
        interval_mm (float): distance between them.
        pixel_spacing (float): in-plane mm/px the detector expects.
        window (tuple, optional): ``WindowHU`` window (also used for the
            pictures); None if the pipeline has none.
        pipeline (list[dict]): the test pipeline for volume slices.
        pixel_spacing_source (str): where ``pixel_spacing`` came from
            (``'argument'``, ``'checkpoint'``, ``'ResampleToSpacing'`` or
            ``'default'``).
        sources (dict[str, str]): the source of ``interval_mm`` and of
            ``pixel_spacing`` (module doc); empty for settings made by hand.
        scan_checks (ScanChecks): the input checks relaxed when a scan is
            read (the ``scan_checks`` of the test pipeline's
            ``LoadDeepLesionSlices``, which ``--force-ct`` and the like set).
    """
    num_slices: int
    interval_mm: float
    pixel_spacing: float
    window: Optional[Tuple[float, float]]
    pipeline: List[dict] = field(default_factory=list)
    pixel_spacing_source: str = 'config'
    sources: Dict[str, str] = field(default_factory=dict)
    scan_checks: ScanChecks = field(default_factory=ScanChecks)


@dataclass
class DetectionSettings:
    """How a scan goes through the detector and its boxes are stacked
    (:func:`~mmlesion.apis.whole_scan.infer.infer_volume`).

    Args:
        batch_size (int): slices per forward pass. Defaults to 4.
        score_thr (float): 2D boxes below it are not stacked. Defaults to
            0.05.
        iou_thr (float): stacking IoU threshold (docs/protocols.md §2:
            0.5). Defaults to 0.5.
        max_gap (int): missing slices a finding may bridge. Defaults to 0.
        min_slices (int): findings spanning fewer slices are dropped.
            Defaults to 1.
        workers (int): threads or processes preparing slices while the
            model runs (0: the main thread; the findings do not depend on
            it). Defaults to 1 (the fastest, ``docs/benchmarks.md``).
        worker_type (str): ``'thread'`` or ``'process'``
            (:mod:`~mmlesion.apis.whole_scan.slices`). Defaults to
            ``'thread'``.
        resample_backend (str): ``'torch'`` or ``'sitk'``
            (:func:`~mmlesion.apis.whole_scan.resample.prepare_volume`).
            Defaults to ``'torch'``.
        show_progress (bool): progress bars. Defaults to True.
        keep_thr (float, optional): the operating point: a finding whose
            best 2D box (``keep_on='best_2d'``) or own score
            (``keep_on='finding'``) is below it is a candidate only (in
            ``candidates.csv``, not measured, drawn or reported). None keeps
            every finding; a run sets it from its operating point.
            Defaults to None.
        keep_on (str): ``'best_2d'`` (a per-image operating point: chosen
            on 2D detector scores) or ``'finding'`` (a per-scan one).
        contain_thr (float, optional): link a box lying mostly inside the
            chain's last one (:class:`~mmlesion.evaluation.functional.
            box_stacking.StackSettings`). Defaults to None.
        join_gap (int, optional): join fragments of a lesion along z at
            most this many slices apart. Defaults to None.
        merge_iou (float, optional): 3D NMS of the findings, the
            suppressed fused into the kept. Defaults to None.
        merge_inside (float, optional): also fuse two findings where the
            smaller lies more than this fraction of its volume inside the
            other. Defaults to None.
    """
    batch_size: int = _DETECTION['batch_size']
    score_thr: float = _DETECTION['score_thr']
    iou_thr: float = _DETECTION['iou_thr']
    max_gap: int = _DETECTION['max_gap']
    min_slices: int = _DETECTION['min_slices']
    workers: int = _DETECTION['workers']
    worker_type: str = _DETECTION['worker_type']
    resample_backend: str = 'torch'
    show_progress: bool = True
    keep_thr: Optional[float] = None
    keep_on: str = 'best_2d'
    contain_thr: Optional[float] = _DETECTION['contain_thr']
    join_gap: Optional[int] = _DETECTION['join_gap']
    merge_iou: Optional[float] = _DETECTION['merge_iou']
    merge_inside: Optional[float] = _DETECTION['merge_inside']

    def stack_settings(self) -> StackSettings:
        """The stacking's settings."""
        return StackSettings(
            self.iou_thr, self.max_gap, self.score_thr, self.min_slices,
            contain_thr=self.contain_thr, join_gap=self.join_gap,
            merge_iou=self.merge_iou, merge_inside=self.merge_inside)

    def lesion_steps(self) -> Dict[str, Any]:
        """The settings that turn chains into lesions, by name (what a
        per-scan calibration chooses: :data:`LESION_STEPS`)."""
        return {name: getattr(self, name) for name in LESION_STEPS}

    def __post_init__(self) -> None:
        if self.keep_on not in ('best_2d', 'finding'):
            raise ValueError("DetectionSettings.keep_on must be 'best_2d' "
                             f"or 'finding', got {self.keep_on!r}")
        for name, value, ok, rule in (
                ('score_thr', self.score_thr, lambda v: 0 <= v < 1,
                 'in [0, 1) (the scores lie in [0, 1])'),
                ('iou_thr', self.iou_thr, lambda v: 0 < v <= 1, 'in (0, 1]'),
                ('max_gap', self.max_gap, lambda v: v >= 0, '>= 0'),
                ('min_slices', self.min_slices, lambda v: v >= 1, '>= 1'),
                ('batch_size', self.batch_size, lambda v: v >= 1, '>= 1'),
                *((name, value, lambda v: 0 <= v <= 1, 'None or in [0, 1]')
                  for name, value in (('contain_thr', self.contain_thr),
                                      ('merge_iou', self.merge_iou),
                                      ('merge_inside', self.merge_inside))
                  if value is not None),
                *(() if self.join_gap is None else (
                    ('join_gap', self.join_gap, lambda v: v >= 0,
                     'None or >= 0'), ))):
            if not (isinstance(value, numbers.Real)
                    and math.isfinite(value) and ok(value)):
                raise ValueError(
                    f"DetectionSettings.{name} (--{name.replace('_', '-')}) "
                    f'must be {rule}, got {value}')


@runtime_checkable
class ModelAdjustment(Protocol):
    """An option of a method's detector that the caller hands to a run
    (:attr:`RunSettings.adjustments`; e.g. the experts a multi-dataset
    model fuses, made by a method's ``WholeScanMethod.steps``,
    :mod:`.method_steps`):
    checked and set
    in the config before anything slow, set on the built model, and
    recorded in ``findings.json``'s ``settings``.
    """

    def adjust_config(self, cfg: Config, cfg_name: str) -> None:
        """Check the option against the detector's config and set it
        there (in place).

        Raises:
            ValueError: the config cannot take it (naming ``cfg_name``).
        """

    def adjust_model(self, model: torch.nn.Module) -> None:
        """Set it on the built detector (also one the caller built)."""

    def record(self) -> Dict[str, Any]:
        """Its entries of ``findings.json``'s ``settings`` (after the
        run's own)."""


@runtime_checkable
class FindingRescorer(Protocol):
    """A second opinion on a scan's stacked 3D findings that the caller
    hands to a run (:attr:`RunSettings.rescorer`; e.g. a method's false
    positive reduction network, made by its
    ``WholeScanMethod.steps``).

    Attributes:
        files (Mapping[str, str | None]): the files it reads by role (e.g.
            ``fpr_config``): ``findings.json``'s ``provenance`` records
            each one given, and a run never removes them as what a killed
            run left behind.
    """

    files: Mapping[str, Optional[str]]

    def load(self, device: str) -> None:
        """Load what it needs (once per run, before the detector)."""

    @property
    def name(self) -> str:
        """What re-scored the findings, once loaded
        (``findings.json``'s ``settings.fpr``)."""

    def rescore(self, findings: List[Finding3D], resampled: CTVolume,
                show_progress: bool) -> List[Finding3D]:
        """The findings of one scan re-scored.

        Args:
            findings (list[Finding3D]): stacked in the voxels of
                ``resampled`` (:func:`~mmlesion.apis.whole_scan.stack.
                stack_findings`).
            resampled (CTVolume): the volume the detector saw.
            show_progress (bool): a progress bar.

        Returns:
            list[Finding3D]: the same findings (boxes unchanged, in any
            order) with their new ``score`` and the ``score_parts`` it was
            combined from.
        """


@dataclass
class RunSettings:
    """How a run from files to files loads its model, detects and writes
    (:func:`~mmlesion.apis.whole_scan.run.run_volume_inference`,
    :func:`~mmlesion.apps.whole_scan.batch.run_batch_inference`).

    Args:
        detection (DetectionSettings): how each scan is detected.
        pixel_spacing (float, optional): in-plane mm/px the model was
            trained at (None: from the checkpoint or the config, module
            doc).
        device (str): torch device. Defaults to ``'cpu'``.
        overwrite (bool): replace earlier results (a batch: run scans that
            have results again). Defaults to False.
        max_pictures (int): findings drawn and listed in the report.
            Defaults to 20.
        dicom (str): DICOM SR and SEG of the findings: ``'auto'`` for a
            DICOM series input, ``'yes'`` (an error if impossible) or
            ``'no'`` (:mod:`~mmlesion.apis.whole_scan.write_dicom`).
        cfg_name (str, optional): the config's name in errors and results
            (default: its path, or ``'<config>'``).
        adjustments (Sequence[ModelAdjustment]): options of a method's
            detector, in order (e.g. the experts a model fuses).
        rescorer (FindingRescorer, optional): re-scores each scan's 3D
            findings (e.g. with a false positive reduction network).
        allow_partial_load (bool): accept a checkpoint that does not fit
            the model exactly (only logged). Defaults to False.
        interval_mm (float, optional): the slice interval (mm) the model
            was trained at (None: as ``pixel_spacing``).
        huge_pages (bool): let numpy ask for transparent huge pages for the
            scans' arrays (:mod:`~mmlesion.utils.huge_pages`; same results).
            Defaults to False (faster for a batch, ``docs/benchmarks.md``).
        fp_rate (float, optional): keep the findings above the score
            threshold the checkpoint's validation chose at this many false
            positives per validation unit
            (:func:`~mmlesion.apis.whole_scan.model.choose_operating_point`).
            None keeps every finding above ``detection.score_thr``
            (``--score-thr``). Defaults to :data:`DEFAULT_FP_RATE`.
        fp_per_scan (float, optional): where the checkpoint records a
            per-scan operating point (``tools/eval_whole_scan.py
            --calibrate``), keep the findings at this many false positives
            per validation scan, with the lesion steps chosen with it (it
            wins over ``fp_rate``). None: the per-image point.
            Defaults to :data:`DEFAULT_FP_PER_SCAN`.
        backend (str): what runs the detector's convolutions and box
            head: ``'torch'``, ``'onnxruntime'`` or ``'openvino'`` (on the
            CPU, f32; exported once, cached beside the checkpoint,
            :mod:`~mmlesion.apis.whole_scan.backend`; the same findings), or
            ``'openvino-bf16'`` (bf16 where the CPU has it: not the same
            findings). Defaults to ``'torch'``.
    """
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    pixel_spacing: Optional[float] = None
    device: str = _SHOWN['RunSettings']['device']
    overwrite: bool = False
    max_pictures: int = _SHOWN['RunSettings']['max_pictures']
    dicom: str = _SHOWN['RunSettings']['dicom']
    cfg_name: Optional[str] = None
    adjustments: Sequence[ModelAdjustment] = ()
    rescorer: Optional[FindingRescorer] = None
    allow_partial_load: bool = False
    interval_mm: Optional[float] = None
    huge_pages: bool = False
    fp_rate: Optional[float] = DEFAULT_FP_RATE
    fp_per_scan: Optional[float] = DEFAULT_FP_PER_SCAN
    backend: str = _SHOWN['RunSettings']['backend']

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f'RunSettings.backend (--backend) must be one '
                             f'of {BACKENDS}, got {self.backend!r}')
        if self.backend != 'torch' and torch.device(
                self.device).type != 'cpu':
            raise ValueError(f'--backend {self.backend} runs on the CPU; '
                             f'--device {self.device} runs torch: give one')
        for name, flag in (('fp_rate', '--fp-rate'),
                           ('fp_per_scan', '--fp-per-scan')):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, numbers.Real)
                                          and math.isfinite(value)
                                          and value > 0):
                raise ValueError(
                    f'RunSettings.{name} ({flag}) must be a number of false '
                    f'positives per validation unit > 0, got {value}')

    def rescorer_files(self) -> Dict[str, Optional[str]]:
        """The files the rescorer reads, by role (empty without one)."""
        return dict(self.rescorer.files) if self.rescorer else {}


def _test_pipeline(cfg: Config) -> list:
    for path in ('test_dataloader.dataset.pipeline', 'test_pipeline',
                 'val_dataloader.dataset.pipeline'):
        node = cfg
        for key in path.split('.'):
            node = node.get(key) if hasattr(node, 'get') else None
            if node is None:
                break
        if node:
            return list(copy.deepcopy(node))
    return []


def _choose(name: str, option: Optional[float], recorded: Optional[dict],
            config: Optional[float], default: float,
            cfg_name: str) -> Tuple[float, str]:
    """A value of the convention and its source (module doc): an invalid
    option raises, an invalid record is ignored with a warning."""
    if option is not None:
        if positive_or_none(option) is None:
            raise ValueError(f'{name} must be > 0 mm, got {option}')
        return float(option), 'option'
    value = (recorded or {}).get(name)
    if value is not None:
        if positive_or_none(value) is not None:
            return float(value), 'checkpoint'
        print_log(f'{cfg_name}: the checkpoint records {name} {value!r} '
                  'for its training data, not a number > 0: ignored',
                  logger='current', level=logging.WARNING)
    if config is not None:
        return float(config), 'config'
    return float(default), 'default'


def _with_crop_offset(meta_keys: Optional[Sequence[str]]) -> tuple:
    """``PackDetInputs``' meta keys (mmdet's default where None) and
    ``crop_offset``, once."""
    if meta_keys is None:
        meta_keys = inspect.signature(
            PackDetInputs.__init__).parameters['meta_keys'].default
    keys = tuple(meta_keys)
    return keys if 'crop_offset' in keys else keys + ('crop_offset', )


def volume_settings_from_config(
        cfg: Config,
        pixel_spacing: Optional[float] = None,
        cfg_name: str = '<config>',
        interval_mm: Optional[float] = None,
        trained: Optional[Mapping] = None) -> VolumeInferenceSettings:
    """Read a 2.5D config's input convention (see the module doc).

    Args:
        cfg (Config): the detector's config.
        pixel_spacing (float, optional): in-plane spacing (mm/px) to use
            (None: from the next source, module doc).
        cfg_name (str): named in errors.
        interval_mm (float, optional): slice interval (mm) to use (None:
            from the next source).
        trained (Mapping, optional): the convention of the training data a
            checkpoint records (``meta[DATA_CONVENTION_KEY]``).

    Returns:
        VolumeInferenceSettings: the settings, where each came from
        (``sources``) and the volume pipeline.

    Raises:
        ValueError: the config's test pipeline has no
            ``LoadDeepLesionSlices`` (not a 2.5D config), or a bad spacing.
    """
    pipeline = _test_pipeline(cfg)
    types = [t.get('type') for t in pipeline]
    if 'LoadDeepLesionSlices' not in types:
        raise ValueError(
            f'{cfg_name}: not a 2.5D config: its test pipeline '
            f'({types or "none found"}) has no LoadDeepLesionSlices, so '
            'the number of slices and their interval are unknown')
    pos = types.index('LoadDeepLesionSlices')
    loader = pipeline[pos]
    kept = [dict(t) for t in pipeline[pos + 1:] if t['type'] not in _DROPPED]
    config = pipeline_convention([loader] + kept)
    trained = trained if isinstance(trained, Mapping) else None
    interval, interval_source = _choose(
        'interval_mm', interval_mm, trained, config['interval_mm'],
        DEFAULT_INTERVAL_MM, cfg_name)
    spacing, spacing_source = _choose(
        'pixel_spacing', pixel_spacing, trained, config['pixel_spacing'],
        DEFAULT_PIXEL_SPACING, cfg_name)
    for name, value in (('interval_mm', interval),
                        ('pixel_spacing', spacing)):
        if positive_or_none(value) is None:  # the config's
            raise ValueError(f'{name} must be > 0 mm, got {value}')
    _log_convention(cfg_name, config, (interval, interval_source),
                    (spacing, spacing_source))
    out = [dict(type='LoadVolumeSlices', num_slices=config['num_slices'],
                interval_mm=interval,
                hu_clip=loader.get('hu_clip', (-1024., 3071.)))]
    window = None
    for t in kept:
        if t['type'] == 'WindowHU':
            window = tuple(float(v) for v in t.get('window',
                                                   (-1024., 1050.)))
        elif t['type'] == 'PackDetInputs':
            # ClipBlackBorder's offset must come back with the predictions
            t['meta_keys'] = _with_crop_offset(t.get('meta_keys'))
        out.append(t)
    return VolumeInferenceSettings(
        num_slices=config['num_slices'], interval_mm=interval,
        pixel_spacing=spacing, window=window, pipeline=out,
        pixel_spacing_source=_PIXEL_SPACING_SOURCE[spacing_source],
        sources=dict(interval_mm=interval_source,
                     pixel_spacing=spacing_source),
        scan_checks=ScanChecks.of(loader.get('scan_checks')))


def _log_convention(cfg_name: str, config: dict,
                    interval: Tuple[float, str],
                    spacing: Tuple[float, str]) -> None:
    """Say where the slice interval and pixel spacing came from: a warning
    for the default pixel spacing and for a checkpoint's record that the
    config's test pipeline contradicts."""
    if spacing[1] == 'default':
        print_log(
            f'{cfg_name}: neither the checkpoint (no record of its training '
            'data) nor the test pipeline (no ResampleToSpacing) tells the '
            f'pixel spacing; slices are resampled to {DEFAULT_PIXEL_SPACING}'
            ' mm/px (DeepLesion at 512 px). Pass the pixel spacing the model'
            ' was trained at if it differs (e.g. --pixel-spacing 1.4 for the'
            ' demo DeepLesion set)', logger='current', level=logging.WARNING)
    for name, (value, source) in (('interval_mm', interval),
                                  ('pixel_spacing', spacing)):
        if source == 'checkpoint' and config[name] is not None and not (
                np.isclose(config[name], value)):
            print_log(
                f'{cfg_name}: the checkpoint records {name} {value:g} for '
                f"its training data, the config's test pipeline "
                f'{config[name]:g}; using {value:g}', logger='current',
                level=logging.WARNING)
    if 'checkpoint' in (interval[1], spacing[1]):
        print_log(
            f'slices of {interval[0]:g} mm ({interval[1]}) at '
            f'{spacing[0]:g} mm/px ({spacing[1]})', logger='current',
            level=logging.INFO)


def build_volume_pipeline(settings: VolumeInferenceSettings) -> Compose:
    """The settings' pipeline, built from mmdet's ``TRANSFORMS`` registry
    (whatever the current default scope)."""
    from mmdet.registry import TRANSFORMS
    return Compose([TRANSFORMS.build(t) for t in settings.pipeline])


@dataclass(frozen=True)
class Finishing:
    """How a batch of scans (:mod:`~mmlesion.apps.whole_scan.batch`)
    reads the next scans and stacks, measures (RECIST) and writes the last
    ones while the model detects; the findings and files do not depend on
    it.

    Args:
        processes (int, optional): scans finished at once, each in a
            process forked from the batch's (:func:`fork_available`); 0:
            one scan at a time in a thread of the batch's process. None:
            ``min(2, CPUs)`` where processes can be forked, else 0.
            Defaults to None.
        recist_with_detection (bool): measure a scan in the model's loop,
            before the next scan is detected; False: with its files, while
            the model detects the next scan. Defaults to False.
        stack_with_detection (bool): stack a scan's 2D boxes into findings
            in the model's loop; False: in the finishing, where the batch
            has no re-scorer (it needs the model at hand) and measures
            later (``recist_with_detection=False``). Defaults to False.
        read_ahead (int): scans read and resampled ahead of the one the
            model detects, one after another in a thread; each costs one
            scan in memory (about 0.45 GB for 512 x 512 x 300 at 2 mm x
            0.8 mm). Defaults to 2.
        niceness (int): added to the niceness of each finishing process
            (``os.nice``), so that on busy cores the model's loop and the
            reading thread get the CPU first. Defaults to 10.
        on_finished (callable, optional): called in the batch's process
            with each queued scan's ``BatchRow`` once its files are
            written or it failed (also without overlap), e.g. to store its
            results on a server before the next scans end. Defaults to
            None.

    Raises:
        ValueError: a negative ``processes``, or processes where they
            cannot be forked.
    """
    processes: Optional[int] = None
    recist_with_detection: bool = False
    stack_with_detection: bool = False
    read_ahead: int = _SHOWN['Finishing']['read_ahead']
    niceness: int = 10
    on_finished: Optional[Callable[[Any], None]] = field(
        default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.niceness <= 19:
            raise ValueError(f'Finishing.niceness must be 0..19, got '
                             f'{self.niceness}')
        if self.read_ahead < 1:
            raise ValueError(f'Finishing.read_ahead must be >= 1, got '
                             f'{self.read_ahead}')
        if self.processes is None:
            return
        if self.processes < 0:
            raise ValueError(f'Finishing.processes must be >= 0, got '
                             f'{self.processes}')
        if self.processes > 0 and not fork_available():
            raise ValueError(
                f'Finishing.processes={self.processes}: scans are finished '
                'in forked processes, which this platform does not offer '
                'safely; use processes=0 (a thread)')

    def resolved_processes(self) -> int:
        """``processes``, with None resolved for this machine."""
        if self.processes is not None:
            return self.processes
        return min(2, usable_cpus()) if fork_available() else 0
