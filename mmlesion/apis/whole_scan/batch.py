# Copyright (c) mmlesion contributors. All rights reserved.
"""A day's scans through one 2.5D detector: the model is loaded once, and
while it runs on a scan one thread reads and resamples the next scan and
another writes the files of the last one.

``tools/infer_volume.py CONFIG CHECKPOINT SCAN SCAN ...`` (or
``--scan-list FILE``) runs :func:`run_batch_inference`. Each scan's results
go into their own folder, ``OUT_DIR/<name>/`` (the name of the file without
its extensions, or of the DICOM folder; two scans of one name are refused
before anything runs), written as one set exactly as for a single scan.
``OUT_DIR/scans.csv`` lists every scan with its status, rewritten whole
after each scan, so a killed batch leaves the list of what it finished.
A scan that fails (an unreadable file, a scan that is not CT, ...) is
named there with its error and the batch goes on; a scan whose folder
already holds results (its ``findings.json``, the file a set writes
last) is skipped (``overwrite=True`` runs it again), so running the same
command after a kill finishes the rest; what an unfinished set left in a
folder without ``findings.json`` is replaced.

The findings and files of a scan are those of ``tools/infer_volume.py`` on
that scan alone: the threads run the same reading and resampling
(:func:`~mmlesion.datasets.volumes.load_ct_volume`,
:func:`~mmlesion.apis.whole_scan.resample.prepare_volume`) one scan ahead and
the same writing (:func:`~mmlesion.apis.whole_scan.run.write_scan`) one scan
behind, so at most three scans are in memory (the original and the
resampled volume of each).
"""
import csv
import io
import os.path as osp
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

from mmengine.config import Config
from mmengine.logging import MMLogger

from mmlesion.datasets.volumes import CTVolume, load_ct_volume
from mmlesion.utils import atomic_write_text, check_writable_dir

from .read import check_resampled_size
from .resample import prepare_volume
from .results import ScanResult
from .run import detect_scan, load_volume_run, volume_run_config, write_scan
from .settings import VolumeInferenceSettings
from .slices import check_workers
from .write import check_out_dir_apart, output_paths, remove_stale_staging
from .write_dicom import prepare_dicom_results

#: The columns of ``OUT_DIR/scans.csv``.
SUMMARY_COLUMNS = ('scan', 'folder', 'status', 'findings', 'best_score',
                   'slices', 'load_seconds', 'detect_seconds',
                   'write_seconds', 'total_seconds', 'error')
SUMMARY_NAME = 'scans.csv'


def read_scan_list(path: Union[str, Path]) -> List[str]:
    """The scans of a list file: one path a line; blank lines and lines
    starting with ``#`` are skipped; relative paths are relative to the
    list's folder.

    Raises:
        FileNotFoundError: the list does not exist.
        ValueError: the list names no scan, or a line's scan does not exist
            (the list, the line number and the path are named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'--scan-list {path}: no such file')
    scans = []
    text = path.read_text(encoding='utf-8', errors='replace')
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith('#'):
            continue
        scan = Path(entry) if osp.isabs(entry) else path.parent / entry
        if not scan.exists():
            raise ValueError(f'--scan-list {path}, line {number}: no such '
                             f'scan {entry!r} ({scan})')
        scans.append(str(scan))
    if not scans:
        raise ValueError(f'--scan-list {path}: no scan listed (one path a '
                         'line; # starts a comment)')
    return scans


def scan_folder_name(scan: Union[str, Path]) -> str:
    """The folder a scan's results go to: a file's name without its
    extensions (``a.nii.gz`` -> ``a``, ``1.3.6.mhd`` -> ``1.3.6``), or a
    DICOM folder's name."""
    path = Path(osp.normpath(str(scan)))
    if path.is_dir():
        return path.name
    name = path.name
    for ext in ('.nii.gz', '.nii', '.mhd', '.mha', '.nrrd', '.dcm'):
        if name.lower().endswith(ext):
            return name[:-len(ext)] or name
    return path.stem or name


def scan_folder_names(scans: Sequence[str]) -> List[str]:
    """:func:`scan_folder_name` of every scan, refusing a name that two
    scans share (naming both) before anything runs."""
    names: List[str] = []
    seen: dict = {}
    for scan in scans:
        name = scan_folder_name(scan)
        if name in seen:
            raise ValueError(
                f'{seen[name]} and {scan} would both write their results to '
                f'the folder {name!r} of --out-dir; rename one or run them '
                'apart')
        seen[name] = scan
        names.append(name)
    return names


def _load_scan(scan: str, settings: VolumeInferenceSettings,
               backend: str) -> Tuple[CTVolume, CTVolume, float]:
    """Read, check and resample one scan (the prefetching thread's work)."""
    start = time.perf_counter()
    volume = load_ct_volume(scan)
    check_resampled_size(volume, settings, scan)  # before any allocation
    resampled = prepare_volume(volume, settings, backend)
    return volume, resampled, time.perf_counter() - start


def prefetched(scans: Sequence[str],
               load: Callable[[str], tuple],
               prefetch: bool = True) -> Iterator[Tuple[str, object]]:
    """Yield ``(scan, load(scan))`` in order, loading the next scan in a
    thread while the caller works on the current one (``prefetch=False``:
    one after another). An exception of ``load`` is yielded in place of its
    result (the caller decides; the next scans still load)."""

    def safe(scan: str):
        try:
            return load(scan)
        except Exception as err:  # reported by the caller, per scan
            return err

    if not prefetch:
        for scan in scans:
            yield scan, safe(scan)
        return
    with ThreadPoolExecutor(max_workers=1,
                            thread_name_prefix='mmlesion-prefetch') as pool:
        future = pool.submit(safe, scans[0]) if scans else None
        for i, scan in enumerate(scans):
            loaded = future.result()
            future = (pool.submit(safe, scans[i + 1])
                      if i + 1 < len(scans) else None)
            yield scan, loaded
            loaded = None  # the next scan may be read while this one is freed


def write_scan_summary(rows: List[dict], path: Union[str, Path]) -> None:
    """Write ``scans.csv`` whole (atomically: a kill leaves the previous
    version)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS,
                            lineterminator='\n')
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, '') for k in SUMMARY_COLUMNS})
    atomic_write_text(str(path), buffer.getvalue())


def _error_text(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    if not isinstance(err, (FileNotFoundError, FileExistsError, ValueError,
                            ImportError, OSError)):
        text = f'{type(err).__name__}: {text}'
    return ' '.join(text.split())


def run_batch_inference(config: Union[str, Config],
                        checkpoint: Optional[str],
                        scans: Sequence[str],
                        out_dir: str,
                        pixel_spacing: Optional[float] = None,
                        device: str = 'cpu',
                        overwrite: bool = False,
                        overlap: bool = True,
                        cfg_name: Optional[str] = None,
                        experts: Optional[List[int]] = None,
                        fpr_config: Optional[str] = None,
                        fpr_checkpoint: Optional[str] = None,
                        dicom: str = 'auto',
                        allow_partial_load: bool = False,
                        model=None,
                        **kwargs) -> List[dict]:
    """Run one detector over many scans (see the module's docstring).

    Args:
        config (str | Config): a 2.5D config.
        checkpoint (str, optional): its weights (None: random weights).
        scans (Sequence[str]): NIfTI / .mhd / DICOM series folders.
        out_dir (str): the batch's folder: ``<name>/`` per scan and
            ``scans.csv``.
        pixel_spacing (float, optional): see
            :func:`~mmlesion.apis.whole_scan.settings.
            volume_settings_from_config`.
        device (str): torch device. Defaults to 'cpu'.
        overwrite (bool): run scans that already have results again
            (default: skip them).
        overlap (bool): while the model runs on a scan, read and resample
            the next one and write the files of the last one, each in a
            thread (False: one step after another; the findings and files
            are the same). Defaults to True.
        cfg_name, experts, fpr_config, fpr_checkpoint, dicom,
            allow_partial_load, model: as
            :func:`~mmlesion.apis.whole_scan.run.run_volume_inference`.
        **kwargs: :func:`~mmlesion.apis.whole_scan.infer.infer_volume`
            options and ``max_pictures``.

    Returns:
        list[dict]: one row per scan (:data:`SUMMARY_COLUMNS`; ``status``
        is ``done``, ``skipped`` (results there already) or ``failed``
        (``error`` says why)), as ``scans.csv`` holds them.

    Raises:
        ValueError: no scan, two scans of one folder name, a bad setting
            (checked before the model is loaded).
        OutputDirError: ``out_dir`` cannot be written (read-only, full).
    """
    if not scans:
        raise ValueError('no scan to run')
    cfg, settings = volume_run_config(config, pixel_spacing, cfg_name,
                                      experts, fpr_config, fpr_checkpoint)
    check_workers(kwargs.get('workers', 0), kwargs.get('worker_type',
                                                       'thread'))
    backend = kwargs.get('resample_backend', 'torch')
    names = scan_folder_names(scans)
    out = Path(out_dir)
    for scan, name in zip(scans, names):
        check_out_dir_apart(out / name, scan)
    check_writable_dir(str(out), what='--out-dir')  # before the model loads
    out.mkdir(parents=True, exist_ok=True)
    summary = out / SUMMARY_NAME
    logger = MMLogger.get_current_instance()
    rows = [dict(scan=str(scan), folder=name, status='queued')
            for scan, name in zip(scans, names)]
    todo = []
    for row in rows:
        remove_stale_staging(out / row['folder'], keep=[
            row['scan'], checkpoint, fpr_config, fpr_checkpoint,
            config if isinstance(config, str) else None])
        if output_paths(out / row['folder'])['json'].exists() and (
                not overwrite):
            row['status'] = 'skipped'
            row['error'] = 'results there already (--overwrite runs it again)'
        else:
            todo.append(row)
    write_scan_summary(rows, summary)
    if not todo:
        logger.info(f'{out}: every scan has results already')
        return rows
    model, fpr, run_info = load_volume_run(
        cfg, config, checkpoint, device, cfg_name, experts, fpr_config,
        fpr_checkpoint, allow_partial_load, model)
    max_pictures = kwargs.pop('max_pictures', 20)
    by_scan = {row['scan']: row for row in todo}
    writing: Optional[Tuple[dict, Future]] = None
    with ThreadPoolExecutor(max_workers=1,
                            thread_name_prefix='mmlesion-write') as writer:
        for i, (scan, loaded) in enumerate(prefetched(
                [row['scan'] for row in todo],
                lambda s: _load_scan(s, settings, backend), overlap)):
            row = by_scan[scan]
            row['index'] = f'[{i + 1}/{len(todo)}]'
            try:
                if isinstance(loaded, BaseException):
                    raise loaded
                volume, resampled, load_seconds = loaded
                loaded = None
                row['load_seconds'] = round(load_seconds, 3)
                folder = str(out / row['folder'])
                # without findings.json (written last) the folder holds no
                # finished set: what an interrupted run left is replaced
                plan = prepare_dicom_results(volume, dicom, folder, True)
                start = time.perf_counter()
                result = detect_scan(model, volume, settings, run_info,
                                     fpr=fpr, resampled=resampled, **kwargs)
                row['detect_seconds'] = round(time.perf_counter() - start, 3)
            except Exception as err:  # one scan's failure ends only it
                _failed(row, err, logger)
                result = None
            if writing is not None:  # one scan is written at a time
                _finish(*writing, logger, summary, rows)
                writing = None
            if result is not None:
                writing = (row, writer.submit(_write_task(
                    result, volume, run_info, folder, plan, max_pictures)))
                if not overlap:  # written before the next scan starts
                    _finish(*writing, logger, summary, rows)
                    writing = None
            else:
                write_scan_summary(rows, summary)
            result = volume = resampled = None  # the writer holds its own
        if writing is not None:
            _finish(*writing, logger, summary, rows)
    return rows


def _write_task(result: ScanResult, volume: CTVolume, run_info: dict,
                folder: str, plan: dict,
                max_pictures: int) -> Callable[[], dict]:

    def task() -> dict:
        start = time.perf_counter()
        write_scan(result, volume, run_info, folder, True, plan,
                   max_pictures)
        return dict(findings=result.findings,
                    slices=result.num_slices, folder=folder,
                    write_seconds=time.perf_counter() - start)

    return task


def _failed(row: dict, err: BaseException, logger) -> None:
    row.update(status='failed', error=_error_text(err))
    logger.error(f"{row.get('index', '')} {row['scan']}: failed: "
                 f"{row['error']}")
    logger.debug(''.join(traceback.format_exception(err)))


def _finish(row: dict, future: Future, logger, summary: Path,
            rows: List[dict]) -> None:
    """Wait for a scan's files, record it, rewrite ``scans.csv``."""
    try:
        written = future.result()
    except Exception as err:
        _failed(row, err, logger)
    else:
        findings = written['findings']
        row.update(
            status='done', findings=len(findings),
            best_score=f'{findings[0].score:.4f}' if findings else '',
            slices=written['slices'],
            write_seconds=round(written['write_seconds'], 3))
        row['total_seconds'] = round(
            row['load_seconds'] + row['detect_seconds']
            + row['write_seconds'], 3)
        logger.info(f"{row['index']} {row['scan']}: {len(findings)} "
                    f"findings, {row['total_seconds']} s -> "
                    f"{written['folder']}")
    write_scan_summary(rows, summary)


def format_batch_summary(rows: List[dict], out_dir: str) -> str:
    """The console's lines for a batch: one per scan, then the counts."""
    lines = []
    for row in rows:
        what = (f"{row['findings']} findings, {row['total_seconds']} s"
                if row['status'] == 'done' else row.get('error', ''))
        lines.append(f"{row['status']:8s} {row['scan']}: {what}")
    counts = {s: sum(r['status'] == s for r in rows)
              for s in ('done', 'skipped', 'failed')}
    lines.append(f"{len(rows)} scans: {counts['done']} done, "
                 f"{counts['skipped']} skipped, {counts['failed']} failed; "
                 f'{osp.join(out_dir, SUMMARY_NAME)}')
    return '\n'.join(lines)
