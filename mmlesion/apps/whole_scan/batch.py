# Copyright (c) mmlesion contributors. All rights reserved.
"""A day's scans through one 2.5D detector (:func:`run_batch_inference`;
docs/infer_volume.md): the model loaded once, the next scans read in a
thread and the last ones finished in forked processes
(:class:`~mmlesion.apis.whole_scan.settings.Finishing`) while it detects.
``OUT_DIR/scans.csv`` is rewritten atomically as each scan ends.
"""
import contextlib
import csv
import io
import os
import os.path as osp
import time
import traceback
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from dataclasses import asdict, dataclass, fields, replace
from typing import (Any, Callable, Deque, Dict, Iterator, List, Mapping,
                    Optional, Protocol, Sequence, Tuple, Union)

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

from mmlesion.apis.whole_scan.infer import ScanSteps, stack_result
from mmlesion.apis.whole_scan.measure import measure_result
from mmlesion.apis.whole_scan.read import read_scan
from mmlesion.apis.whole_scan.resample import prepare_volume
from mmlesion.apis.whole_scan.results import ScanResult
from mmlesion.apis.whole_scan.run import (RunInfo, ScanOutput, detect_scan,
                                          load_volume_run, volume_run_config,
                                          write_scan)
from mmlesion.apis.whole_scan.settings import (FindingRescorer, Finishing,
                                               RunSettings,
                                               VolumeInferenceSettings)
from mmlesion.apis.whole_scan.slices import check_workers
from mmlesion.apis.whole_scan.write import (OutDirLock, check_out_dir_apart,
                                            output_paths,
                                            recorded_model_warnings,
                                            remove_stale_staging)
from mmlesion.apis.whole_scan.write_dicom import (DicomPlan,
                                                  prepare_dicom_results)
from mmlesion.datasets.volumes import CTVolume
from mmlesion.utils import atomic_write_text, check_writable_dir
from mmlesion.utils.distributed.forked_call import ForkedCall, ForkedCallError
from mmlesion.utils.huge_pages import numpy_huge_pages
from mmlesion.utils.writing.atomic import remove_stale_temporaries_of

from .scan_list import NamedScan, named_scans

SUMMARY_NAME = 'scans.csv'


@dataclass
class BatchRow:
    """One scan of a batch (:func:`run_batch_inference`), filled in as
    the batch runs: a row of ``scans.csv`` (:data:`SUMMARY_COLUMNS`).

    Args:
        scan (str): the scan's path.
        folder (str): its results folder's name in the batch's folder.
        status (str): ``queued``, then ``done``, ``skipped`` (results
            there already) or ``failed`` (``error`` says why).
        findings (int, optional): how many.
        best_score (str, optional): the best finding's score, 4 decimals
            (``''`` without findings).
        slices (int, optional): resampled slices detected.
        load_seconds, detect_seconds, measure_seconds, write_seconds,
            total_seconds (float, optional): the times of its steps.
        error (str, optional): why it failed or was skipped.
        index (str): ``[i/n]`` in the console's lines (not written).
    """
    scan: str
    folder: str
    status: str = 'queued'
    findings: Optional[int] = None
    best_score: Optional[str] = None
    slices: Optional[int] = None
    load_seconds: Optional[float] = None
    detect_seconds: Optional[float] = None
    measure_seconds: Optional[float] = None
    write_seconds: Optional[float] = None
    total_seconds: Optional[float] = None
    error: Optional[str] = None
    index: str = ''


#: The columns of ``OUT_DIR/scans.csv``.
SUMMARY_COLUMNS = tuple(f.name for f in fields(BatchRow))[:-1]


#: The schedule of ``overlap=False``: one step after another.
ONE_AFTER_ANOTHER = Finishing(processes=0, recist_with_detection=True)


def _load_scan(scan: str, settings: VolumeInferenceSettings,
               backend: str) -> Tuple[CTVolume, CTVolume, float]:
    """Read, check and resample one scan (the prefetching thread's work)."""
    start = time.perf_counter()
    volume = read_scan(scan, settings)
    resampled = prepare_volume(volume, settings, backend)
    return volume, resampled, time.perf_counter() - start


def prefetched(scans: Sequence[str],
               load: Callable[[str], tuple],
               prefetch: bool = True,
               ahead: int = 1) -> Iterator[Tuple[str, object]]:
    """Yield ``(scan, load(scan))`` in order, loading the next ``ahead``
    scans in a thread while the caller works on the current one. An
    exception of ``load`` is yielded in place of its result.

    Args:
        scans (Sequence[str]): the scans, in order.
        load (callable): ``load(scan)``, run in the thread.
        prefetch (bool): load in a thread at all.
        ahead (int): scans loaded (or being loaded) beyond the one the
            caller holds, at most (>= 1).

    Yields:
        tuple: ``(scan, load(scan) or its exception)``.
    """

    def safe(scan: str):
        try:
            return load(scan)
        except Exception as err:  # reported by the caller, per scan
            return err

    if not prefetch:
        for scan in scans:
            yield scan, safe(scan)
        return
    if ahead < 1:
        raise ValueError(f'prefetched: ahead must be >= 1, got {ahead}')
    with ThreadPoolExecutor(max_workers=1,
                            thread_name_prefix='mmlesion-prefetch') as pool:
        futures = deque(pool.submit(safe, scan) for scan in scans[:ahead])
        for i, scan in enumerate(scans):
            loaded = futures.popleft().result()
            if i + ahead < len(scans):
                futures.append(pool.submit(safe, scans[i + ahead]))
            yield scan, loaded
            loaded = None  # the next scan may be read while this one is freed


def record_scan_rows(rows: Sequence[BatchRow],
                     path: Union[str, Path]) -> None:
    """Record ``rows`` in ``scans.csv`` in place of the rows of their
    folders, the others kept (a forked finisher's copy of the batch's rows
    is not current). Atomic, one writer at a time (``flock``)."""
    path = Path(path)
    with _summary_lock(path.parent):
        table = read_csv_rows(path)  # none: what is known now
        table.update((row.folder, asdict(row)) for row in rows)
        write_csv(path, SUMMARY_COLUMNS, list(table.values()))


def read_csv_rows(path: Path, key: str = 'folder') -> Dict[str, dict]:
    """A CSV's rows by the column ``key`` (empty where unreadable)."""
    try:
        with open(path, newline='', encoding='utf-8') as f:
            return {rec[key]: rec for rec in csv.DictReader(f)}
    except (OSError, csv.Error, KeyError):
        return {}


def write_csv(path: Union[str, Path], columns: Sequence[str],
              table: Sequence[Mapping[str, Any]]) -> None:
    """Write a table's ``columns`` (others ignored; None as ``''``)
    atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns),
                            lineterminator='\n', extrasaction='ignore')
    writer.writeheader()
    writer.writerows(table)
    atomic_write_text(str(path), buffer.getvalue())


@contextlib.contextmanager
def _summary_lock(folder: Path) -> Iterator[None]:
    """One writer of the batch's ``scans.csv`` at a time."""
    import fcntl
    fd = os.open(str(folder), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _error_text(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    if not isinstance(err, (FileNotFoundError, FileExistsError, ValueError,
                            ImportError, OSError, ForkedCallError)):
        text = f'{type(err).__name__}: {text}'
    return ' '.join(text.split())


@dataclass(frozen=True)
class BatchOptions:
    """How :func:`run_batch_inference` schedules its scans.

    Args:
        overlap (bool): while the model runs on a scan, read and resample
            the next one in a thread and measure and write the last ones
            (``finishing``) (False: one step after another; the findings
            and files are the same). Defaults to True.
        model (nn.Module, optional): an already built model (then
            ``checkpoint`` is ignored).
        finishing (Finishing, optional): where the scans are measured and
            written while the model runs (without ``overlap`` only its
            ``on_finished`` is used). Defaults to ``Finishing()``.
    """
    overlap: bool = True
    model: Optional[torch.nn.Module] = None
    finishing: Optional[Finishing] = None


def run_batch_inference(config: Union[str, Config],
                        checkpoint: Optional[str],
                        scans: Sequence[Union[str, NamedScan]],
                        out_dir: str,
                        run_settings: Optional[RunSettings] = None,
                        options: BatchOptions = BatchOptions()
                        ) -> List[BatchRow]:
    """Run one detector over many scans (see the module's docstring).

    Args:
        config (str | Config): a 2.5D config.
        checkpoint (str, optional): its weights (None: random weights).
        scans (Sequence[str | NamedScan]): NIfTI / .mhd / DICOM series
            folders (a :class:`NamedScan` names its results folder).
        out_dir (str): the batch's folder: ``<name>/`` per scan and
            ``scans.csv``.
        run_settings (RunSettings, optional): as
            :func:`~mmlesion.apis.whole_scan.run.run_volume_inference`;
            ``overwrite`` runs scans that already have results again
            (default: skip them). Defaults to ``RunSettings()``.
        options (BatchOptions): overlap, a built model, the finishing.

    Returns:
        list[BatchRow]: one row per scan, as ``scans.csv`` holds them.

    Raises:
        ValueError: no scan, two scans of one folder name, a bad setting
            (checked before the model is loaded).
        OutputDirError: ``out_dir`` cannot be written (read-only, full), or
            (``OutDirBusyError``) another run writes into it.
    """
    run = run_settings or RunSettings()
    if not scans:
        raise ValueError('no scan to run')
    model = options.model
    finishing = options.finishing or Finishing()
    if not options.overlap:  # its schedule ignored, its callback kept
        finishing = replace(ONE_AFTER_ANOTHER,
                            on_finished=finishing.on_finished)
    # the checkpoint's record of its training data, as a single run reads
    run_config = volume_run_config(
        config, run, checkpoint if model is None else None)
    check_workers(run.detection.workers, run.detection.worker_type)
    out = Path(out_dir)
    lock = OutDirLock(out)  # taken by _queue_scans after its checks
    try:
        rows = _queue_scans(scans, out, run.overwrite, keep=[
            checkpoint, *run.rescorer_files().values(),
            config if isinstance(config, str) else None], lock=lock)
        todo = [row for row in rows if row.status == 'queued']
        if not todo:
            MMLogger.get_current_instance().info(
                f'{out}: every scan has results already')
            return rows
        loaded = load_volume_run(run_config.cfg, config, checkpoint, run,
                                 model, preloaded=run_config.checkpoint)
        with numpy_huge_pages(run.huge_pages):
            _Batch(loaded.model, loaded.rescorer, loaded.info,
                   run_config.settings, run, out, rows).run(
                       todo, options.overlap, finishing)
    finally:
        lock.release()
    return rows


def _queue_scans(scans: Sequence[Union[str, NamedScan]], out: Path,
                 overwrite: bool,
                 keep: List[Optional[str]],
                 lock: OutDirLock) -> List[BatchRow]:
    """The batch's rows, checked and ``scans.csv`` written before the
    model loads: a scan with results is skipped (unless ``overwrite``),
    the others queued."""
    named = named_scans(scans)
    for item in named:
        check_out_dir_apart(out / item.folder, item.scan)
    check_writable_dir(str(out), what='--out-dir')  # before the model loads
    lock.acquire()
    out.mkdir(parents=True, exist_ok=True)
    # a batch killed while it wrote scans.csv left its temporary
    remove_stale_temporaries_of(str(out / SUMMARY_NAME))
    rows = [BatchRow(scan=item.scan, folder=item.folder) for item in named]
    for row in rows:
        remove_stale_staging(out / row.folder, keep=[row.scan] + keep)
        if not overwrite and output_paths(out / row.folder).json.exists():
            row.status = 'skipped'
            row.error = 'results there already (--overwrite runs it again)'
    with _summary_lock(out):  # whole, atomically
        write_csv(out / SUMMARY_NAME, SUMMARY_COLUMNS,
                  [asdict(row) for row in rows])
    return rows


class _Batch:
    """The queued scans of :func:`run_batch_inference` through the loaded
    model (see the module doc)."""

    def __init__(self, model: torch.nn.Module,
                 rescorer: Optional[FindingRescorer], run_info: RunInfo,
                 settings: VolumeInferenceSettings, run: RunSettings,
                 out: Path, rows: List[BatchRow]) -> None:
        self.model, self.rescorer, self.run_info = model, rescorer, run_info
        self.settings, self.options = settings, run
        self.out, self.rows = out, rows
        self.summary = out / SUMMARY_NAME
        self.logger = MMLogger.get_current_instance()
        self.on_finished: Optional[Callable[[BatchRow], None]] = None

    def run(self, todo: List[BatchRow], overlap: bool,
            finishing: Finishing = ONE_AFTER_ANOTHER) -> None:
        """Detect the queued scans one after another, each handed on to be
        finished (``overlap=False``: before the next scan is read)."""
        by_scan = {row.scan: row for row in todo}
        self.on_finished = finishing.on_finished
        backend = self.options.detection.resample_backend
        processes = finishing.resolved_processes()
        later = not finishing.recist_with_detection
        stack_later = (later and not finishing.stack_with_detection
                       and self.rescorer is None)
        pending: Deque[Tuple[BatchRow, _Pending]] = deque()
        with _finisher(processes, finishing.niceness) as submit:
            try:
                for i, (scan, loaded) in enumerate(prefetched(
                        [row.scan for row in todo],
                        lambda s: _load_scan(s, self.settings, backend),
                        overlap, finishing.read_ahead)):
                    row = by_scan[scan]
                    row.index = f'[{i + 1}/{len(todo)}]'
                    detected = self.detect(row, loaded, measure=not later,
                                           stack=not stack_later)
                    loaded = None
                    # at most `processes` scans (1 thread) finished at once
                    while len(pending) >= max(processes, 1):
                        self.finish(*pending.popleft())
                    if detected is None:
                        record_scan_rows([row], self.summary)
                        self._ended(row)
                        continue
                    pending.append((row, submit(_finish_task(
                        *detected, self.run_info, self.options.max_pictures,
                        later, row, self.summary))))
                    detected = None  # the finisher holds its own
                    if not overlap:  # written before the next scan starts
                        self.finish(*pending.popleft())
            finally:  # what was handed on is finished (or failed)
                while pending:
                    self.finish(*pending.popleft())

    def detect(self, row: BatchRow, loaded, measure: bool = True,
               stack: bool = True) -> Optional[tuple]:
        """One loaded scan (or its loading error) through the model: the
        result, the scan, its folder and DICOM plan, or None (failed).
        ``measure`` / ``stack``: here, else by the finisher."""
        try:
            if isinstance(loaded, BaseException):
                raise loaded
            volume, resampled, load_seconds = loaded
            loaded = None
            row.load_seconds = round(load_seconds, 3)
            folder = str(self.out / row.folder)
            # without findings.json (written last) the folder holds no
            # finished set: what an interrupted run left is replaced
            plan = prepare_dicom_results(volume, self.options.dicom, folder,
                                         True)
            start = time.perf_counter()
            result = detect_scan(self.model, volume, self.settings,
                                 self.run_info, self.options.detection,
                                 ScanSteps(self.rescorer, resampled,
                                           measure=False, stack=stack))
            row.detect_seconds = round(time.perf_counter() - start, 3)
            if measure:
                start = time.perf_counter()
                measure_result(result, volume)
                row.measure_seconds = round(time.perf_counter() - start, 3)
        except Exception as err:  # one scan's failure ends only it
            _failed(row, err, self.logger)
            return None
        return result, volume, folder, plan

    def finish(self, row: BatchRow, pending: '_Pending') -> None:
        _finish(row, pending, self.logger, self.summary)
        self._ended(row)

    def _ended(self, row: BatchRow) -> None:
        """A scan done or failed: ``Finishing.on_finished``."""
        if self.on_finished is not None:
            self.on_finished(row)


def _finish_task(result: ScanResult, volume: CTVolume, folder: str,
                 plan: DicomPlan, run_info: RunInfo, max_pictures: int,
                 measure: bool, row: Optional[BatchRow] = None,
                 summary: Optional[Path] = None) -> Callable[[], dict]:
    """A scan's finishing: stacked (if not yet), measured (``measure``),
    written, then its row recorded ``done`` in ``summary``; it returns a
    few numbers (no arrays)."""
    row = None if row is None else replace(row)  # the batch's stays its

    def task() -> dict:
        start = time.perf_counter()
        stack_result(result, volume)
        stacked = time.perf_counter()
        if measure:
            measure_result(result, volume)
        measured = time.perf_counter()
        write_scan(result, volume, run_info,
                   ScanOutput(folder, True, plan, max_pictures))
        findings = result.findings
        written = dict(
            findings=len(findings),
            best_score=findings[0].score if findings else None,
            slices=result.num_slices, folder=folder,
            measure_seconds=measured - stacked if measure else None,
            write_seconds=time.perf_counter() - measured,
            stack_seconds=stacked - start)
        if row is not None and summary is not None:
            _record_done(row, written)
            # a refused write: the batch records the row again and says so
            with contextlib.suppress(OSError):
                record_scan_rows([row], summary)
        return written

    return task


class _Pending(Protocol):
    """A scan being finished (a thread's ``Future`` or a ``ForkedCall``):
    :meth:`result` waits for :func:`_finish_task`'s numbers or raises."""

    def result(self) -> dict:
        ...


@contextlib.contextmanager
def _finisher(processes: int, niceness: int = 0
              ) -> Iterator[Callable[[Callable], _Pending]]:
    """``submit(task) -> _Pending``: one thread (``processes == 0``) or a
    forked process per scan, its niceness raised by ``niceness``."""
    if processes == 0:
        with ThreadPoolExecutor(max_workers=1,
                                thread_name_prefix='mmlesion-write') as pool:
            yield pool.submit
        return
    _warm_pictures()
    yield lambda task: ForkedCall(_niced(task, niceness),
                                  name='mmlesion-finish')


def _niced(task: Callable[[], dict], niceness: int) -> Callable[[], dict]:
    """``task`` run after ``os.nice(niceness)``."""

    def run() -> dict:
        if niceness:
            os.nice(niceness)
        return task()

    return run


def _warm_pictures() -> None:
    """Load the pictures' fonts and colour map once, before the forks
    (matplotlib's only where it draws: the benchmarks' older schedules)."""
    with contextlib.suppress(Exception):  # only a warm-up
        from mmlesion.visualization import volume_report
        from mmlesion.visualization.key_slice_raster import (
            KEY_SLICE_TEXT_PX, KeySliceRaster)
        from mmlesion.visualization.overview_raster import (NUMBER_PX,
                                                            TEXT_PX,
                                                            TITLE_PX,
                                                            draw_overview,
                                                            score_colors)
        from mmlesion.visualization.pixel_drawing import font
        for px in (KEY_SLICE_TEXT_PX, NUMBER_PX, TEXT_PX, TITLE_PX):
            font(px)
            font(px, bold=True)
        score_colors([0.5])
        if volume_report.draw_overview is draw_overview and \
                volume_report.KeySliceRaster is KeySliceRaster:
            return
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.figure  # noqa: F401
        import matplotlib.patches  # noqa: F401
        from matplotlib import font_manager
        font_manager.get_font(font_manager.findfont('DejaVu Sans'))


def _failed(row: BatchRow, err: BaseException, logger) -> None:
    row.status, row.error = 'failed', _error_text(err)
    logger.error(f'{row.index} {row.scan}: failed: {row.error}')
    logger.debug(''.join(traceback.format_exception(
        type(err), err, err.__traceback__)))


def _record_done(row: BatchRow, written: dict) -> None:
    """``row`` from :func:`_finish_task`'s numbers."""
    best = written['best_score']
    row.status, row.findings = 'done', written['findings']
    row.best_score = '' if best is None else f'{best:.4f}'
    row.slices = written['slices']
    row.write_seconds = round(written['write_seconds'], 3)
    if written['measure_seconds'] is not None:
        row.measure_seconds = round(written['measure_seconds'], 3)
    # stacked by the finisher: part of the detection, as in one run
    row.detect_seconds = round(
        row.detect_seconds + written['stack_seconds'], 3)
    row.total_seconds = round(
        row.load_seconds + row.detect_seconds
        + row.measure_seconds + row.write_seconds, 3)


def _finish(row: BatchRow, pending: _Pending, logger,
            summary: Path) -> None:
    """Wait for a scan's files, record it in ``scans.csv``."""
    try:
        written = pending.result()
    except Exception as err:
        _failed(row, err, logger)
    else:
        _record_done(row, written)
        logger.info(f"{row.index} {row.scan}: {row.findings} "
                    f"findings, {row.total_seconds} s -> "
                    f"{written['folder']}")
    record_scan_rows([row], summary)


def format_batch_summary(rows: List[BatchRow], out_dir: str) -> str:
    """The console's lines for a batch: the model's warning (as each
    scan's report says it), one line per scan, then the counts."""
    lines = [f'WARNING: model {w}' for w in recorded_model_warnings(
        osp.join(out_dir, r.folder) for r in rows
        if r.status in ('done', 'skipped'))]
    for row in rows:
        what = (f"{row.findings} findings, {row.total_seconds} s"
                if row.status == 'done' else row.error or '')
        lines.append(f"{row.status:8s} {row.scan}: {what}")
    counts = {s: sum(r.status == s for r in rows)
              for s in ('done', 'skipped', 'failed')}
    lines.append(f"{len(rows)} scans: {counts['done']} done, "
                 f"{counts['skipped']} skipped, {counts['failed']} failed; "
                 f'{osp.join(out_dir, SUMMARY_NAME)}')
    return '\n'.join(lines)
