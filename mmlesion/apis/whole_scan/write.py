# Copyright (c) mmlesion contributors. All rights reserved.
"""The files of a whole-scan detection (:func:`~mmlesion.apis.whole_scan.
infer.infer_volume`): ``findings.json``, the LUNA16
``candidates.csv``, the key-slice pictures, the overview and the HTML
report (with the DICOM SR / SEG when asked), written together as one set,
and the console summary."""
import contextlib
import csv
import errno
import json
import os
import os.path as osp
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Set, Union

from mmlesion.utils.writing.atomic import (TMP_PREFIX, AtomicOutputSet,
                                           OutputDirError, check_writable_dir)
from mmlesion.utils.writing.refusals import path_inside
from mmlesion.utils.writing.work_dir_lock import (WorkDirBusyError,
                                                  WorkDirLock,
                                                  describe_holder)

from mmlesion.visualization.volume_report import (describe_size,
                                                  kept_text, series_text,
                                                  slices_text)

from .results import DicomStatus, OutputPaths, ScanResult
from .write_dicom import dicom_output_paths, series_names

#: Threads writing a scan's key-slice PNGs while the next pictures are
#: drawn (0: each written as it is drawn).
PNG_WRITERS = 2
CANDIDATE_COLUMNS = ('seriesuid', 'coordX', 'coordY', 'coordZ',
                     'probability')


def output_paths(out_dir: Union[str, Path]) -> OutputPaths:
    """The files :func:`write_volume_results` writes into ``out_dir``."""
    out = Path(out_dir)
    return OutputPaths(json=out / 'findings.json', csv=out / 'candidates.csv',
                overview=out / 'overview.png', html=out / 'report.html',
                key_slices=out / 'key_slices')


class OutputIntoInputError(ValueError):
    """``--out-dir`` would write into the scan it reads."""


def check_out_dir_apart(out_dir: Union[str, Path],
                        scan: Union[str, Path]) -> None:
    """Refuse an ``--out-dir`` that would write into the scan it reads
    (a DICOM series folder or inside it; an output replacing a scan file).

    Args:
        out_dir (str | Path): the output folder.
        scan (str | Path): the scan (file or DICOM folder).

    Raises:
        OutputIntoInputError: naming both paths.
    """
    out = osp.realpath(str(out_dir))
    src = osp.realpath(str(scan))
    if osp.isdir(src):
        if path_inside(out, src):
            where = 'the' if out == src else 'inside the'
            raise OutputIntoInputError(
                f'--out-dir {out_dir} is {where} DICOM series folder '
                f'{scan} it reads; the results (DICOM '
                'SR / SEG among them) would join the series and the folder '
                'would no longer load as one series. Choose an --out-dir '
                'outside it')
        return
    outputs = [p for _, p in output_paths(out).named()
               ] + dicom_output_paths(out).all()
    clash = [str(p) for p in outputs if osp.realpath(str(p)) == src]
    if clash:
        raise OutputIntoInputError(
            f'--out-dir {out_dir}: the output {clash[0]} would replace the '
            f'scan {scan} it reads. Choose another --out-dir')


#: mkdtemp's 8 random characters after a staging folder's prefix.
_STAGING_TAIL = re.compile(r'^[a-z0-9_]{8}$')


def remove_stale_staging(out_dir: Union[str, Path],
                         keep: Iterable[Union[str, Path]] = ()) -> List[str]:
    """Remove the staging folders that killed runs left beside ``out_dir``
    (:class:`~mmlesion.utils.writing.atomic.AtomicOutputSet`'s, exactly
    that name, no symlinks), none that holds a path in ``keep``.

    Args:
        out_dir (str | Path): the output folder.
        keep (Iterable): paths that must survive.

    Returns:
        list[str]: the removed folders (none while another run writes
        into ``out_dir`` or a folder holding it: :func:`out_dir_busy`,
        :func:`run_above`).
    """
    out = osp.abspath(str(out_dir))
    if out_dir_busy(out) or run_above(out):
        return []
    parent = osp.dirname(out)
    prefix = f'{TMP_PREFIX}set-{osp.basename(out)}-'
    kept = [osp.realpath(str(p)) for p in keep if p]
    removed = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(prefix)
                and _STAGING_TAIL.match(name[len(prefix):])):
            continue
        path = osp.join(parent, name)
        if osp.islink(path) or not osp.isdir(path):
            continue
        real = osp.realpath(path)
        if any(path_inside(k, real) for k in kept) or path_inside(
                osp.realpath(out), real):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


#: The lock file of ``--out-dir`` ``<parent>/<name>``: beside it, like the
#: staging folders, so that the folder holds only results.
OUT_LOCK_FORMAT = '.mmlesion-out-{}.lock'


class OutDirBusyError(OutputDirError, WorkDirBusyError):
    """``--out-dir`` is written by another running ``infer_volume``."""


class OutDirLock(WorkDirLock):
    """One ``infer_volume`` run per ``--out-dir`` at a time: a
    :class:`~mmlesion.utils.writing.work_dir_lock.WorkDirLock` on
    :func:`out_lock_path`, removed (with the empty folders it created) at
    its end.

    A run whose results go into folders inside ``out_dir`` (a batch: one
    per scan) and a run into one of those folders would delete each
    other's unfinished files, so the lock is also refused while another
    run writes into a folder directly inside ``out_dir`` and, with
    ``single``, while one writes into a folder holding it (a batch or
    sharded run's; their own jobs, in ``OUT/shard_<k>``, take no
    ``single`` lock).

    Args:
        out_dir (str | Path): the output folder.
        single (bool): the lock of a single-scan run.
    """

    def __init__(self, out_dir: Union[str, Path],
                 single: bool = False) -> None:
        self.out_dir = osp.realpath(str(out_dir))
        super().__init__(osp.dirname(self.out_dir), what='--out-dir')
        self.path = out_lock_path(self.out_dir)
        self.single = single
        self._created: List[str] = []

    def busy_message(self, holder: str) -> str:
        """The refusal: the folder and the run writing into it."""
        return (f'{self.out_dir}: --out-dir in use by another infer_volume '
                f'run ({holder}); two runs into one --out-dir interleave '
                'their files. Wait for it to end, stop it, or choose '
                'another --out-dir')

    def acquire(self) -> 'OutDirLock':
        """Take the lock (creating the parent folders) or raise.

        Raises:
            OutDirBusyError: another running process holds it.
        """
        if self.held:
            return self
        self._created = _missing_folders(self.work_dir)
        for _ in range(10):  # the holder may remove the file meanwhile
            try:
                super().acquire()
            except WorkDirBusyError as err:
                raise OutDirBusyError(str(err)) from None
            if _same_file(self._file, self.path):
                _HELD_OUT.add(self.path)
                break
            WorkDirLock.release(self)
        else:
            raise OutDirBusyError(f'{self.out_dir}: --out-dir lock '
                                  f'{self.path} keeps being replaced')
        clash = (self.single and run_above(self.out_dir)) or \
            _run_inside(self.out_dir)
        if clash:  # checked with the lock held: one of two runs sees it
            self.release()
            raise OutDirBusyError(
                f'{self.out_dir}: {clash}; two runs into one folder delete '
                "each other's unfinished files. Wait for it to end, stop it, "
                'or choose an --out-dir apart from it')
        return self

    def release(self) -> None:
        """Remove the lock file and the empty folders it created, then
        release the lock."""
        if not self.held:
            return
        _HELD_OUT.discard(self.path)
        with contextlib.suppress(OSError):  # gone already: nothing to do
            os.unlink(self.path)
        for folder in self._created:  # deepest first; kept if not empty
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        super().release()


#: Lock files this process holds (flock sees two opens in one process as
#: two owners).
_HELD_OUT: Set[str] = set()


def out_lock_path(out_dir: Union[str, Path]) -> str:
    """The lock file of ``out_dir`` (:class:`OutDirLock`)."""
    out = osp.realpath(str(out_dir))
    return osp.join(osp.dirname(out),
                    OUT_LOCK_FORMAT.format(osp.basename(out)))


def _missing_folders(folder: str) -> List[str]:
    """``folder`` and its missing parents, deepest first."""
    missing = []
    while folder and not osp.exists(folder):
        missing.append(folder)
        parent = osp.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return missing


def _same_file(handle, path: str) -> bool:
    """Whether the open ``handle`` is still the file at ``path``."""
    try:
        return os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
    except OSError:
        return False


def _holder(lock_path: str) -> Optional[str]:
    """The run holding the lock file ``lock_path`` in words
    (:func:`~mmlesion.utils.writing.work_dir_lock.describe_holder`), or
    None when no other process holds it."""
    if lock_path in _HELD_OUT or not osp.isfile(lock_path):
        return None
    import fcntl
    try:
        with open(lock_path, 'r', encoding='utf-8') as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno in (errno.EAGAIN, errno.EACCES,
                                 errno.EWOULDBLOCK):
                    return describe_holder(f.read())
    except OSError:
        pass
    return None


def out_dir_busy(out_dir: Union[str, Path]) -> bool:
    """Whether another process holds ``out_dir``'s :class:`OutDirLock`."""
    return _holder(out_lock_path(out_dir)) is not None


def run_above(out_dir: Union[str, Path]) -> Optional[str]:
    """The run writing into a folder that holds ``out_dir`` (up to one
    this process writes into), in words, or None."""
    folder = osp.realpath(str(out_dir))
    while osp.dirname(folder) != folder:
        folder = osp.dirname(folder)
        lock = out_lock_path(folder)
        if lock in _HELD_OUT:
            return None
        holder = _holder(lock)
        if holder:
            return (f'inside {folder}, the --out-dir of another infer_volume '
                    f'run ({holder})')
    return None


def _run_inside(out_dir: str) -> Optional[str]:
    """The run writing into a folder directly inside ``out_dir``, in words,
    or None."""
    prefix, suffix = OUT_LOCK_FORMAT.split('{}')
    with contextlib.suppress(OSError):
        for name in sorted(os.listdir(out_dir)):
            if name.startswith(prefix) and name.endswith(suffix):
                holder = _holder(osp.join(out_dir, name))
                if holder:
                    inner = name[len(prefix):len(name) - len(suffix)]
                    return (f'{osp.join(out_dir, inner)} inside it is the '
                            f'--out-dir of another infer_volume run '
                            f'({holder})')
    return None


def check_out_dir(out_dir: Union[str, Path], overwrite: bool) -> None:
    """Refuse earlier results without ``overwrite``, and a read-only or
    full folder.

    Raises:
        FileExistsError: naming the files that exist.
        OutputDirError: the folder cannot be written or is full
            (:func:`mmlesion.utils.check_writable_dir`).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f'{out} exists and is not a folder')
    paths = output_paths(out)
    existing = [str(p) for _, p in paths.named() if p.exists()]
    if existing and not overwrite and not paths.json.exists():
        raise FileExistsError(
            f'{out} holds an INCOMPLETE set of results ('
            f'{", ".join(existing)}, without findings.json, which a set '
            'writes last: a run was stopped while moving its files into '
            'place); --overwrite (overwrite=True) writes a complete new set '
            'over it (other files there stay), or choose another --out-dir')
    if existing and not overwrite:
        raise FileExistsError(
            f'{out} already holds results ({", ".join(existing)}); pass '
            '--overwrite (overwrite=True) to replace them or choose another '
            '--out-dir')
    check_writable_dir(out, what='--out-dir')


def write_volume_results(result: ScanResult,
                         out_dir: Union[str, Path],
                         overwrite: bool = False,
                         max_pictures: int = 20,
                         title: Optional[str] = None,
                         dicom_writer: Optional[Callable[[str],
                                                         DicomStatus]] = None
                         ) -> OutputPaths:
    """Write the findings of :func:`~mmlesion.apis.whole_scan.infer.
    infer_volume` into ``out_dir`` as one set (docs/infer_volume.md).

    Args:
        result (ScanResult): from :func:`~mmlesion.apis.whole_scan.infer.
            infer_volume`; its findings get ``key_slice_png`` (those
            drawn) and, with ``dicom_writer``, the result ``dicom``.
        out_dir (str | Path): output folder (created).
        overwrite (bool): replace earlier results.
        max_pictures (int): findings drawn and listed in the report.
        title (str, optional): report title (default: the scan path).
        dicom_writer (callable, optional): ``dicom_writer(folder) ->
            DicomStatus`` writes the DICOM SR / SEG into ``folder`` (the
            staging folder: they join the set) and returns what
            ``result.dicom`` records.

    Returns:
        OutputPaths: the written paths (as :func:`output_paths`, with
        ``sr`` / ``seg`` when written).
    """
    from mmlesion.visualization.volume_report import (KeySliceRaster,
                                                      draw_overview,
                                                      write_html_report)
    check_out_dir(out_dir, overwrite)
    final = output_paths(out_dir)
    stale = [str(p.relative_to(out_dir))
             for p in final.key_slices.glob('finding_*.png')]
    stale += [p.name for p in dicom_output_paths(out_dir).all()
              if p.exists()]
    resampled = result.resampled
    window = result.settings.window or (-1024., 1050.)
    # staged beside out_dir, moved in together: the old findings.json
    # (the completion marker) removed first, the new one moved in last
    with AtomicOutputSet(out_dir) as outputs:
        paths = {k: Path(outputs.path(str(p.relative_to(out_dir))))
                 for k, p in final.named() if k != 'key_slices'}
        if dicom_writer is not None:
            result.dicom = dicom_writer(
                osp.dirname(outputs.path('findings.json')))
            final = replace(final, **{
                k: Path(out_dir) / getattr(result.dicom, k)
                for k in ('sr', 'seg') if getattr(result.dicom, k)})
        pictures = {}
        canvas = None  # one raster for all the key slices
        # PNGs written by threads while the next pictures are drawn
        with (ThreadPoolExecutor(PNG_WRITERS,
                                 thread_name_prefix='mmlesion-png')
              if PNG_WRITERS else contextlib.nullcontext()) as saver:
            written = []
            for f in result.findings[:max_pictures]:
                rel = f'key_slices/finding_{f.id:03d}.png'
                canvas = canvas or KeySliceRaster(
                    resampled, window, result.model_warning, result.original)
                written.append(canvas.draw(f.to_dict(),
                                           Path(outputs.path(rel)), saver))
                pictures[f.id] = Path(outputs.path(rel))
                f.key_slice_png = rel
            name_series(result)
            record = result.to_dict()
            draw_overview(resampled, record['findings'], paths['overview'],
                          window, max_findings=max_pictures,
                          warning=result.model_warning)
            for future in written:
                if future is not None:
                    future.result()  # a failed write raises here
        paths['json'].write_text(json.dumps(record, indent=1) + '\n',
                                 encoding='utf-8')
        cands = result.candidates  # none: the findings'
        rows = (zip(cands.centres_world.tolist(), cands.scores.tolist())
                if len(cands) else
                ((f.center_world, f.score) for f in result.findings))
        with open(paths['csv'], 'w', newline='') as f:
            writer = csv.writer(f, lineterminator='\n')
            writer.writerow(CANDIDATE_COLUMNS)
            writer.writerows([result.series_uid, f'{x:.3f}', f'{y:.3f}',
                              f'{z:.3f}', f'{s:.6f}'] for (x, y, z), s in rows)
        write_html_report(record, pictures, paths['overview'], paths['html'],
                          title=title or str(result.scan),
                          max_findings=max_pictures)
        outputs.commit(last='findings.json', stale=stale)
    return final


def recorded_model_warnings(folders: Iterable[Union[str, Path]]
                            ) -> List[str]:
    """The ``model_warning`` s (e.g. demo weights) of the results written
    into ``folders`` (their ``findings.json``), each once, in order: the
    summaries of many scans say them as each report does.

    Args:
        folders (Iterable): scans' results folders (one without
            ``findings.json`` is passed over).

    Returns:
        list[str]: the warnings.
    """
    found = []
    for folder in folders:
        path = output_paths(folder).json
        if path.is_file():
            found.append(json.loads(path.read_text(encoding='utf-8')).get(
                'model_warning'))
    return list(dict.fromkeys(w for w in found if w))


def _score_parts_text(parts: Dict[str, float]) -> str:
    """`` (s_DET 0.700, s_FPR 0.500)``, or nothing."""
    if not parts:
        return ''
    return ' (' + ', '.join(
        f"{'s_' + k[2:].upper() if k.startswith('s_') else k} {v:.3f}"
        for k, v in parts.items()) + ')'


def name_series(result: ScanResult) -> None:
    """Set a DICOM scan's ``series_description`` and ``series_number``
    (:func:`~mmlesion.apis.whole_scan.write_dicom.series_names`) unless
    known."""
    if result.series_description is None and result.series_number is None:
        names = series_names(result.scan, result.series_uid)
        result.series_description = names.description
        result.series_number = names.number


def format_summary(result: ScanResult) -> str:
    """A few lines: the model warning if any, findings, speed and the
    written files."""
    lines = [f'WARNING: model {result.model_warning}'] \
        if result.model_warning else []
    name_series(result)
    lines += [
        f'scan: {result.scan}',
        'series: ' + series_text(dict(
            series_uid=result.series_uid,
            series_description=result.series_description,
            series_number=result.series_number)),
        f'slices: {result.num_slices} at {result.settings.interval_mm} mm, '
        f'{result.settings.pixel_spacing} mm/px; '
        f'{result.num_boxes_2d} 2D boxes -> '
        + (f'{len(result.candidates)} 3D candidates, '
           if result.candidates else '')
        + f'{len(result.findings)} 3D findings',
        f'speed: {result.slices_per_second} slices/s '
        f'({result.detect_seconds} s detection on {result.device})',
    ]
    if result.operating_point is not None:
        lines.append('kept: ' + kept_text(
            result.operating_point.to_dict(), len(result.findings),
            len(result.candidates)))
    for f in result.findings[:5]:
        x, y, z = f.center_world
        record = f.to_dict()
        lines.append(f'  #{f.id}: score {f.score:.3f} at '
                     f'({x:.1f}, {y:.1f}, {z:.1f}) mm, '
                     + describe_size(record) + ', ' + slices_text(record)
                     + _score_parts_text(f.score_parts))
    for name, path in (result.paths.named() if result.paths else []):
        lines.append(f'{name}: {path}')
    dicom = result.dicom
    if dicom is not None and not dicom.written and dicom.reason != (
            'not requested'):
        lines.append(f'no DICOM results: {dicom.reason}')
    elif dicom is not None and dicom.written and dicom.seg is None:
        lines.append(f'no DICOM SEG: {dicom.seg_reason}')
    return '\n'.join(lines)
