# Copyright (c) mmlesion contributors. All rights reserved.
"""The model of a whole-scan run and what a result records about it: the
data convention its checkpoint records (:func:`checkpoint_data_convention`),
its provenance (:func:`run_provenance`), whether it was trained on the
synthetic demo data (:func:`demo_model_warning`) and the operating point
its validation chose (:func:`choose_operating_point`).

A model counts as demo-trained when a ``data_root`` in the
``train_dataloader`` of the config it was trained with (the checkpoint's
``meta['cfg']`` text, parsed, never executed; else the given config) is a
demo set: a folder of it is named as the demo generators write
(:data:`DEMO_DATA_FOLDERS`), or holds a generator's marker file
(``demo_meta.json``, or ``ground_truth.json`` in it or its parent). The
config's file name is not used: a demo config fine-tuned on real data
trains on real data.
"""
import ast
import logging
import math
import hashlib
import json
import os.path as osp
import platform
from pathlib import PurePath
from typing import Any, List, Mapping, Optional, Union

import torch
from mmengine.config import Config

from mmengine.logging import print_log

from mmlesion.datasets.volumes import CTVolume
from mmlesion.evaluation.functional.operating_points import (
    OPERATING_POINTS_KEY, SCAN_OPERATING_POINTS_KEY, OperatingPoints)
from mmlesion.utils.checkpoints.checksum import sha256_file
from mmlesion.utils.configs.known_keys import config_values
from .results import (CheckpointRecord, ConfigRecord, OperatingPoint,
                      RunProvenance, SoftwareVersions)
from .settings import DATA_CONVENTION_KEY, RunSettings

#: The ``model_warning`` of ``findings.json`` for a demo-trained model.
DEMO_MODEL_WARNING = ('trained on synthetic demo data: findings are not '
                      'clinically meaningful')
#: Folder names the demo data generators and tools write to by default.
DEMO_DATA_FOLDERS = ('demo_deeplesion', 'demo_lung', 'demo_volumes',
                     'study_volumes')
#: ``generator`` of the marker files the demo generators write.
DEMO_GENERATOR = 'mmlesion.datasets.demo'
#: Marker files: in the data root, and (volume sets) in its parent.
_MARKERS = (('demo_meta.json', 'ground_truth.json'), ('ground_truth.json', ))


def checkpoint_data_convention(meta: Optional[Mapping]) -> Optional[dict]:
    """The convention of the training data a checkpoint records
    (``meta['mmlesion_data_convention']``, written by
    :class:`~mmlesion.engine.hooks.DataConventionHook`).

    Args:
        meta (Mapping, optional): the checkpoint's ``meta``
            (:func:`checkpoint_meta`).

    Returns:
        dict | None: the record, None without one.
    """
    record = meta.get(DATA_CONVENTION_KEY) if meta is not None else None
    return dict(record) if isinstance(record, Mapping) else None


def read_checkpoint(checkpoint: Optional[str]) -> Optional[dict]:
    """A local checkpoint read once per run, before the model is built (its
    meta is needed first; the model's load then takes the same dict).
    Never raises: for a missing, remote, untrusted or corrupt checkpoint it
    gives None, and the model's load names the problem.

    Args:
        checkpoint (str, optional): a path or URL.

    Returns:
        dict, optional: the checkpoint, or None.
    """
    from mmlesion.utils.checkpoints.loader import load_local_checkpoint
    if not checkpoint or not osp.isfile(checkpoint):
        return None
    try:
        read = load_local_checkpoint(checkpoint, map_location='cpu')
    except Exception:  # named by the model's load
        return None
    return read if isinstance(read, dict) else None


def checkpoint_meta(checkpoint: Optional[Mapping]) -> Optional[Mapping]:
    """The ``meta`` of a checkpoint :func:`read_checkpoint` read (None
    without a checkpoint or meta)."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) \
        else None
    return meta if isinstance(meta, Mapping) else None


def training_data_roots(cfg: Any) -> List[str]:
    """The ``data_root`` values inside a config's ``train_dataloader``.

    Args:
        cfg (Config | dict): the config.

    Returns:
        list[str]: in the order they appear (empty without any).
    """
    return [value for path, value in config_values(
        cfg.get('train_dataloader') or {}, '')
        if path.endswith('.data_root') and isinstance(value, str)]


def training_data_roots_of_text(text: str) -> List[str]:
    """As :func:`training_data_roots`, from a config's text (its
    ``pretty_text``, as mmengine saves it in a checkpoint), by parsing it:
    the text is not executed.

    Args:
        text (str): Python config text.

    Returns:
        list[str]: the string ``data_root`` values of the
        ``train_dataloader = ...`` assignment (empty if the text does not
        parse or has none).
    """
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    roots = []
    for stmt in tree.body:
        if not (isinstance(stmt, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == 'train_dataloader'
                for t in stmt.targets)):
            continue
        for node in ast.walk(stmt.value):
            pairs = []
            if isinstance(node, ast.Call):
                pairs = [(k.arg, k.value) for k in node.keywords]
            elif isinstance(node, ast.Dict):
                pairs = [(k.value if isinstance(k, ast.Constant) else None, v)
                         for k, v in zip(node.keys, node.values)]
            roots.extend(v.value for k, v in pairs if k == 'data_root'
                         and isinstance(v, ast.Constant)
                         and isinstance(v.value, str))
    return roots


def _has_demo_marker(folder: str, names) -> bool:
    for name in names:
        try:  # OSError: no such file
            with open(osp.join(folder, name), encoding='utf-8-sig') as f:
                generator = json.load(f).get('generator')
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(generator, str) and generator.startswith(
                DEMO_GENERATOR):
            return True
    return False


def is_demo_data_root(root: str) -> bool:
    """Whether a data root is one of the synthetic demo sets (module doc).

    Args:
        root (str): the ``data_root`` of a dataset config.

    Returns:
        bool: a folder of the path is in :data:`DEMO_DATA_FOLDERS`, or the
        folder (when it exists here) holds a demo generator's marker file.
    """
    if not root:
        return False
    if any(part in DEMO_DATA_FOLDERS for part in PurePath(root).parts):
        return True
    folder = osp.normpath(root)
    if not osp.isdir(folder):
        return False
    return any(
        _has_demo_marker(where, names)
        for where, names in zip((folder, osp.dirname(osp.abspath(folder))),
                                _MARKERS))


def demo_model_warning(cfg: Any,
                       checkpoint_meta: Optional[Mapping] = None
                       ) -> Optional[str]:
    """:data:`DEMO_MODEL_WARNING` for a model trained on the demo data
    (module doc).

    Args:
        cfg (Config | dict): the config given to the tool.
        checkpoint_meta (Mapping, optional): the checkpoint's ``meta``; its
            ``cfg`` text, when present, is the config the weights were
            trained with and decides alone.

    Returns:
        str | None: the warning, or None for any other model.
    """
    text = (checkpoint_meta or {}).get('cfg')
    if isinstance(text, str) and text.strip():
        roots = training_data_roots_of_text(text)
    else:
        roots = training_data_roots(cfg)
    if any(is_demo_data_root(r) for r in roots):
        return DEMO_MODEL_WARNING
    return None


def software_versions() -> SoftwareVersions:
    """Versions of mmlesion, its OpenMMLab stack, torch and Python."""
    import mmcv
    import mmdet
    import mmengine

    from mmlesion.version import __version__
    return SoftwareVersions(
        mmlesion=__version__, mmdet=mmdet.__version__, mmcv=mmcv.__version__,
        mmengine=mmengine.__version__, torch=torch.__version__,
        python=platform.python_version())


def checkpoint_record(path: Optional[str], sha256: Optional[str] = None
                      ) -> Optional[CheckpointRecord]:
    """The absolute path and SHA-256 of a checkpoint file (hashed unless
    ``sha256``, the one its load verified, is given), or None (random
    weights)."""
    if path is None:
        return None
    return CheckpointRecord(path=osp.abspath(path),
                            sha256=sha256 or sha256_file(path))


def config_record(cfg: Config, name: Optional[str] = None) -> ConfigRecord:
    """The config's path (if a file), its full text and its SHA-256.

    The text is mmengine's ``pretty_text`` without the yapf formatting (the
    same config when loaded back; formatting is slower than reading a
    scan).

    Args:
        cfg (Config): the config as run (``--cfg-options`` merged).
        name (str, optional): its file name as given.
    """
    try:
        text = Config(cfg.to_dict(), filename=cfg.filename,
                      format_python_code=False).pretty_text
    except Exception:  # a value mmengine cannot write; keep the dict
        text = repr(cfg.to_dict())
    path = name if name is not None else cfg.filename
    return ConfigRecord(
        path=osp.abspath(path) if path and osp.isfile(path) else path,
        sha256=hashlib.sha256(text.encode('utf-8')).hexdigest(),
        text=text)


def run_provenance(cfg: Config,
                   config_name: Optional[str],
                   checkpoint: Optional[str],
                   checkpoint_sha256: Optional[str] = None,
                   **others: Union[str, None]) -> RunProvenance:
    """The provenance of a result file.

    Args:
        cfg (Config): the config as run.
        config_name (str, optional): its file name as given.
        checkpoint (str, optional): the checkpoint (None: random weights).
        checkpoint_sha256 (str, optional): its SHA-256 verified by its load
            (:class:`~mmlesion.apis.detector_loader.LoadedDetector`).
        **others: further checkpoints by role, e.g.
            ``fpr_checkpoint=...``.

    Returns:
        RunProvenance: ``checkpoint``, ``config``, ``versions`` and a
        record per extra checkpoint given.
    """
    return RunProvenance(
        checkpoint=checkpoint_record(checkpoint, checkpoint_sha256),
        config=config_record(cfg, config_name),
        versions=software_versions(),
        files={role: checkpoint_record(path)
               for role, path in others.items() if path is not None})


#: ``OperatingPoint.note`` by validation unit.
FP_UNIT_NOTES = dict(
    image='FPs per 2D validation image (a key slice): on a whole scan about '
    'that many false 2D boxes per slice, stacked into fewer findings; not '
    'a rate per scan',
    **{'sub-volume': 'FPs per validation (sub-)volume: about per scan for '
       'scans like those volumes'},
    scan='false findings per whole validation scan (a second finding on '
    'one lesion counted as false), lesions hit in 3D')


def check_operating_point(checkpoint: Optional[str], meta: Optional[Mapping],
                          run: RunSettings) -> None:
    """Refuse, before anything slow runs, a checkpoint whose operating-point
    record :func:`choose_operating_point` would refuse (``meta``: from
    :func:`checkpoint_meta`).

    Raises:
        ValueError: as :func:`choose_operating_point`.
    """
    if meta is not None and ((run.fp_rate is not None and OPERATING_POINTS_KEY
                              in meta) or (run.fp_per_scan is not None and
                                           SCAN_OPERATING_POINTS_KEY in meta)):
        choose_operating_point(meta, run, checkpoint, warn=False)


def choose_operating_point(checkpoint_meta: Mapping, run: RunSettings,
                           checkpoint: Optional[str] = None,
                           warn: bool = True) -> OperatingPoint:
    """The operating point a run keeps findings at.

    Args:
        checkpoint_meta (Mapping): the checkpoint's ``meta``.
        run (RunSettings): its ``fp_rate`` (None: ``--score-thr``) and
            ``detection.score_thr``.
        checkpoint (str, optional): named in the lines and errors.
        warn (bool): print the warning line (False: the check before a
            run, which chooses again when the model is loaded).

    Returns:
        OperatingPoint: the checkpoint's validated threshold at
        ``run.fp_rate`` (with one warning line naming the sensitivity
        where its validation found no lesion there); a checkpoint without the record (any but the best
        of a validated training) keeps every finding above ``score_thr``,
        with one warning line.

    Raises:
        ValueError: the record is malformed
            (:meth:`~mmlesion.evaluation.functional.operating_points.
            OperatingPoints.from_dict` names the field), its validation had
            no detections (no threshold), or ``run.fp_rate`` is not one of
            the recorded rates; each says that ``--score-thr`` runs anyway.
    """
    floor = float(run.detection.score_thr)
    name = checkpoint or 'the model'
    meta = checkpoint_meta or {}
    if run.fp_per_scan is not None and SCAN_OPERATING_POINTS_KEY in meta:
        return _validated_point(name, meta, SCAN_OPERATING_POINTS_KEY,
                                run.fp_per_scan, warn)
    if run.fp_rate is None:
        return OperatingPoint('score-thr', floor)
    if OPERATING_POINTS_KEY not in meta:
        print_log(
            f'{name} records no validated operating point (only the best '
            'checkpoint of a validated training does): keeping every '
            f'finding above --score-thr {floor:g}, as before',
            logger='current', level=logging.WARNING)
        return OperatingPoint('none', floor)
    return _validated_point(name, meta, OPERATING_POINTS_KEY, run.fp_rate,
                            warn)


def _validated_point(name: str, meta: Mapping, key: str, fp_rate: float,
                     warn: bool) -> OperatingPoint:
    """The point of the record ``meta[key]`` at ``fp_rate`` (see
    :func:`choose_operating_point`)."""
    instead = ('; --score-thr THR keeps every finding above a threshold of '
               'your own instead')
    try:
        points = OperatingPoints.from_dict(meta[key])
        index = points.rate_index(fp_rate)
    except ValueError as err:
        raise ValueError(f"{name}: meta['{key}']: {err}" + instead) \
            from None
    threshold = points.thresholds[index]
    if math.isnan(threshold):
        raise ValueError(
            f'{name}: its validation ({points.split}, epoch {points.epoch}) '
            f'had no detections, so it chose no threshold at '
            f'{fp_rate:g} FPs per {points.fp_unit}' + instead)
    sens = points.sensitivities[index:index + 1] or [None]
    if warn and sens[0] == 0:
        where = ('every recorded rate' if not any(points.sensitivities) else
                 f'{fp_rate:g} FPs per {points.fp_unit}')
        print_log(
            f'{name}: its validation ({points.split}, epoch {points.epoch}) '
            f'found no lesion: sensitivity 0 at {where}, so its threshold '
            f'{threshold:.4g} at {fp_rate:g} FPs per {points.fp_unit} is '
            'not a validated operating point (train longer or check the '
            'data); --score-thr THR keeps every finding above a threshold of '
            'your own', logger='current', level=logging.WARNING)
    return OperatingPoint(
        'validation', float(threshold), float(fp_rate), points.fp_unit,
        sens[0], points.split, points.epoch,
        FP_UNIT_NOTES.get(points.fp_unit), points.lesion_steps,
        points.scan_z_mm)


#: A scan more than this many times longer along z than the validation
#: scans of its per-scan operating point gets :func:`scan_length_warning`:
#: false findings grow with the length scanned, and the recorded rates
#: double from one to the next (1/8 to 8 per scan), so past twice the
#: length a scan's false findings are expected beyond the next recorded
#: rate up, not at the one chosen (within it, about as much as scans of
#: one validation set differ).
LONG_SCAN_RATIO = 2.


def z_extent_mm(volume: CTVolume) -> float:
    """A scan's extent along z (mm): slices times their spacing."""
    return float(volume.shape_zyx[0] * volume.spacing_zyx[0])


def scan_length_warning(point: Optional[OperatingPoint],
                        volume: CTVolume) -> Optional[str]:
    """One line where ``volume`` is more than :data:`LONG_SCAN_RATIO`
    times longer along z than the validation scans of a per-scan ``point``
    (None otherwise, also where the record lacks their extent)."""
    z_mm = z_extent_mm(volume)
    if point is None or point.fp_unit != 'scan' or not point.scan_z_mm or \
            z_mm <= LONG_SCAN_RATIO * point.scan_z_mm:
        return None
    return (f'this scan is {z_mm:.0f} mm along z, {z_mm / point.scan_z_mm:.1f}'
            f' times the {point.scan_z_mm:.0f} mm of the validation scans its '
            f'operating point of {point.fp_rate:g} false findings per scan '
            'was chosen on: expect more false findings here (about in '
            'proportion to the length)')
