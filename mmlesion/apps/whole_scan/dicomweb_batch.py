# Copyright (c) mmlesion contributors. All rights reserved.
"""A batch whose scans come from a DICOM server and whose results go back
to it (:func:`run_server_inference`; docs/dicom_server.md): the series
retrieved into ``OUT/series/<Series Instance UID>/``, run as a batch, each
scan's SR and SEG stored back as soon as its files are written,
``OUT/server.csv`` naming each series by its UIDs (no patient name).
"""
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, List, Optional, Union

from mmengine.config import Config
from mmengine.logging import MMLogger

from mmlesion.apis.whole_scan.settings import Finishing, RunSettings
from mmlesion.apis.whole_scan.write import OutDirLock, output_paths
from mmlesion.utils.writing.atomic import remove_stale_temporaries

from .batch import (BatchOptions, read_csv_rows, run_batch_inference,
                    write_csv)
from .dicomweb_source import DicomWebSettings
from .dimse_source import DimseSettings
from .server_source import (DicomServerError, FoundSeries, SeriesRef,
                            SeriesTransport, find_series, retrieve_series)
from .store_back import store_scan_results

#: ``OUT/server.csv``.
SERVER_SUMMARY = 'server.csv'
#: Where the retrieved series go, under ``OUT``.
SERIES_FOLDER = 'series'


@dataclass
class ServerRow:
    """One series the query found (a row of ``server.csv``).

    Args:
        study_uid (str): its Study Instance UID.
        series_uid (str): its Series Instance UID (also its results'
            folder name).
        status (str): ``skipped`` (not a CT volume: ``reason``),
            ``failed`` (retrieval, detection or store: ``reason``) or
            ``done``.
        findings (int, optional): the scan's kept findings.
        sr (str): what became of its SR: ``stored``, ``on the server
            already``, or ``''`` (none written, or not stored).
        seg (str): the same for its SEG.
        reason (str): why skipped or failed.
    """
    study_uid: str
    series_uid: str
    status: str = ''
    findings: Optional[int] = None
    sr: str = ''
    seg: str = ''
    reason: str = ''


def write_server_summary(rows: List[ServerRow], path: Path) -> None:
    """``server.csv``, written atomically."""
    write_csv(path, list(ServerRow.__dataclass_fields__),
              [asdict(row) for row in rows])


def skipped_rows(found: FoundSeries,
                 warn: Optional[Callable[[str], None]] = None,
                 info: Optional[Callable[[str], None]] = None,
                 source: str = '') -> List[ServerRow]:
    """The rows of the series ``found`` skips, each told to ``warn`` and
    the counts to ``info`` if given (``source``: the server, named
    first)."""
    rows = [ServerRow(s.series.study_uid, s.series.series_uid, 'skipped',
                      reason=s.reason) for s in found.skipped]
    for row in rows if warn else ():
        warn(f'series {row.series_uid} (study {row.study_uid}): '
             f'skipped: {row.reason}')
    if info:
        info(f'{source}{len(found.to_run) + len(rows)} series found, '
             f'{len(found.to_run)} to run, {len(rows)} skipped')
    return rows


@dataclass(frozen=True)
class ServerOptions(BatchOptions):
    """:class:`~mmlesion.apps.whole_scan.batch.BatchOptions` of a server
    run, with what a caller may have done already.

    Args:
        found (FoundSeries, optional): the series to run and those
            skipped, if the query was asked already (a shard's share).
        transport (SeriesTransport, optional): ``source.connect()``, made
            here if not given.
    """
    found: Optional[FoundSeries] = None
    transport: Optional[SeriesTransport] = None


def run_server_inference(config: Union[str, Config],
                         checkpoint: Optional[str],
                         source: Union[DicomWebSettings, DimseSettings],
                         out_dir: str,
                         run_settings: Optional[RunSettings] = None,
                         options: ServerOptions = ServerOptions()
                         ) -> List[ServerRow]:
    """Query, retrieve, detect and store back (see the module doc).

    Args:
        config (str | Config): a 2.5D config.
        checkpoint (str, optional): its weights.
        source (DicomWebSettings | DimseSettings): the server and its
            protocol, the query, whether results are stored back.
        out_dir (str): the run's folder.
        run_settings: as
            :func:`~mmlesion.apps.whole_scan.batch.run_batch_inference`.
        options (ServerOptions): its batch options, and the series found
            and the connection if made already.

    Returns:
        list[ServerRow]: one per series the query found.

    Raises:
        DicomServerError: the server cannot be queried (unreachable,
            credentials or association refused): nothing has run.
    """
    transport = options.transport or source.connect()
    found = options.found
    if found is None:
        found = find_series(transport, source.query)
    logger = MMLogger.get_current_instance()
    out = Path(out_dir)
    rows = skipped_rows(found, logger.warning, logger.info,
                        f'{transport.name}: ')
    summary = out / SERVER_SUMMARY
    series_dir = out / SERIES_FOLDER
    folders, refs = [], {}
    # one run retrieves into OUT at a time (then the batch takes it)
    with OutDirLock(out):
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(str(series_dir), 'series-')
        before = read_csv_rows(summary, 'series_uid')
        for ref in found.to_run:
            row = _row_before(ref, before.get(ref.series_uid), out)
            rows.append(row)
            try:
                folder = retrieve_series(transport, ref, series_dir)
            except DicomServerError as err:
                row.status, row.reason = 'failed', str(err)
                logger.error(f'series {ref.series_uid}: {err}')
                continue
            folders.append(str(folder))
            refs[str(folder)] = (ref, row)
        write_server_summary(rows, summary)
    ended = set()

    def scan_ended(batch_row) -> None:
        """A scan's results stored back as soon as they are written."""
        ref, row = refs[batch_row.scan]
        _finish_row(transport, ref, row, batch_row, out, source.store_back)
        write_server_summary(rows, summary)
        ended.add(batch_row.scan)

    if folders:
        batch = run_batch_inference(
            config, checkpoint, folders, str(out), run_settings,
            BatchOptions(options.overlap, options.model, replace(
                options.finishing or Finishing(), on_finished=scan_ended)))
        for batch_row in batch:  # those skipped: results there already
            if batch_row.scan not in ended:
                scan_ended(batch_row)
    write_server_summary(rows, summary)
    return rows


def _row_before(ref: SeriesRef, before: Optional[dict],
                out: Path) -> ServerRow:
    """The row of a series: ``done`` with its findings where
    ``server.csv`` said so and its results are still there (a count of
    the done series never drops while it runs again: a retry), its SR and
    SEG said once asked again; else a new row."""
    row = ServerRow(ref.study_uid, ref.series_uid)
    if before and before.get('status') == 'done' and output_paths(
            out / ref.series_uid).json.is_file():
        row.status = 'done'
        row.findings = int(before['findings']) if before.get(
            'findings') else None
    return row


def _finish_row(transport: SeriesTransport, ref: SeriesRef, row: ServerRow,
                batch_row, out: Path, store_back: bool) -> None:
    """The row of a scan the batch ran or skipped: its findings, and its
    results stored back (``store_back``)."""
    result_dir = out / batch_row.folder
    if not output_paths(result_dir).json.exists():  # failed
        row.status = 'failed'
        row.reason = batch_row.error or 'no results'
        return
    row.status = 'done'
    row.findings = batch_row.findings
    if row.findings is None:  # skipped: results there already
        row.findings = len(json.loads(
            output_paths(result_dir).json.read_text()).get('findings', []))
    if not store_back:
        return
    try:
        stored = store_scan_results(transport, ref, result_dir)
    except DicomServerError as err:
        row.status, row.reason = 'failed', str(err)
        MMLogger.get_current_instance().error(
            f'series {ref.series_uid}: {err}')
        return
    for item in stored:
        setattr(row, item.kind, item.status)
