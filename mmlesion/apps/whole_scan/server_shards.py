# Copyright (c) mmlesion contributors. All rights reserved.
"""The series of a server query sharded over several jobs
(:func:`run_sharded_query`; docs/archive.md): the query asked once, here;
each job retrieves, runs and stores back its share
(:func:`~mmlesion.apps.whole_scan.dicomweb_batch.run_server_inference`).
"""
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Sequence, Set, Tuple

from .batch import read_csv_rows
from .dicomweb_batch import (SERVER_SUMMARY, ServerOptions, ServerRow,
                             run_server_inference, skipped_rows,
                             write_server_summary)
from .dicomweb_source import PASSWORD_ENV, DicomWebSettings
from .scan_list import NamedScan
from .server_source import FoundSeries, find_series
from .shard_summary import ShardedRow, shard_folder
from .store_back import ON_SERVER, STARTED_STORES, STORED
from .shards import ShardedRun, ShardWork, run_sharded_inference


class SeriesWork(ShardWork):
    """The series a query found, as the items of a sharded run.

    Args:
        source (DicomWebSettings | DimseSettings): the server (a DICOMweb
            password is not pickled into a job: a Slurm job reads it from
            its environment).
        found (FoundSeries): the query's series to run and those skipped.
    """

    def __init__(self, source: Any, found: FoundSeries) -> None:
        # named by its UIDs, never by a patient's name
        super().__init__([NamedScan(
            f'series {r.series_uid} (study {r.study_uid})', r.series_uid)
            for r in found.to_run])
        self.source = source
        self.refs = {r.series_uid: r for r in found.to_run}
        self.skipped = skipped_rows(found)
        self._tables: Dict[Path, Tuple[int, Dict[str, dict]]] = {}
        #: (series UID, 'sr' or 'seg') a round of this run stored (a retry
        #: finds them on the server, and its table says so).
        self._stored: Set[Tuple[str, str]] = set()
        #: When this run began: a store recorded as begun since is its own.
        self._began = time.time()

    def __getstate__(self) -> dict:
        """Pickled (a Slurm job) without the DICOMweb password."""
        state = dict(self.__dict__)
        if isinstance(self.source, DicomWebSettings) and self.source.password:
            state['source'] = replace(self.source, password='')
        return state

    def only(self, folders: Sequence[str]) -> 'SeriesWork':
        part = super().only(folders)
        part.refs = {k: self.refs[k] for k in folders}
        part.skipped = []
        part._tables, part._stored = {}, set()
        return part

    def run(self, job) -> int:
        """Retrieve, run and store back the job's series."""
        source = self.source
        if isinstance(source, DicomWebSettings) and source.user and \
                not source.password:  # a pickled job: from its environment
            source = replace(source, password=os.environ.get(PASSWORD_ENV, ''))
        run = job.run
        rows = run_server_inference(
            run.config,
            run.checkpoint,
            source,
            run.out_dir,
            run.run_settings,
            options=ServerOptions(
                overlap=run.overlap,
                finishing=run.finishing,
                found=FoundSeries([self.refs[s.folder] for s in self.scans])))
        return sum(row.status == 'failed' for row in rows)

    def _table(self, folder: Path) -> Dict[str, dict]:
        """The shard's ``server.csv`` by Series Instance UID (cached by
        mtime)."""
        path = folder / SERVER_SUMMARY
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            return {}
        if self._tables.get(path, (None, ))[0] != stamp:
            self._tables[path] = (stamp, read_csv_rows(path, 'series_uid'))
        return self._tables[path][1]

    def finished(self, folder: Path, name: str) -> bool:
        """Its row of the shard's ``server.csv`` says ``done`` (so a
        failed store is tried again)."""
        return (self._table(folder).get(name, {}).get('status') == 'done'
                and super().finished(folder, name))

    def reasons(self, folder: Path) -> Dict[str, str]:
        """The shard's ``server.csv`` (retrieval, detection, store), else
        its ``scans.csv``."""
        reasons = super().reasons(folder)
        reasons.update({uid: rec['reason'] for uid, rec in
                        self._table(folder).items()
                        if rec.get('status') == 'failed' and
                        rec.get('reason')})
        return reasons

    def output_names(self) -> Tuple[str, ...]:
        return (SERVER_SUMMARY, )

    def round_ended(self, folders: Sequence[Path]) -> None:
        """Remember what the round's jobs stored (their shards' tables, and
        the stores a job killed before its table recorded as begun: a retry
        finds those on the server)."""
        for shard in folders:
            for uid, rec in self._table(shard).items():
                self._stored.update((uid, kind) for kind in ('sr', 'seg')
                                    if rec.get(kind) == STORED)
            # a job killed after a store, before its table said so
            for started in (Path(shard) / STARTED_STORES).glob('*.*'):
                folder, kind = started.name.rsplit('.', 1)
                if started.stat().st_mtime >= self._began - 1:
                    self._stored.add((folder, kind))

    def _store_status(self, row: ShardedRow, rec: dict, kind: str) -> str:
        """What became of a series' SR or SEG in this run: ``stored`` by
        one of its rounds, else ``on the server already`` (found there, or
        stored by an earlier run: the table of a shard that did not run),
        else ``''``."""
        if (row.folder, kind) in self._stored:
            return STORED
        return ON_SERVER if rec.get(kind) in (STORED, ON_SERVER) else ''

    def write_outputs(self, rows: Sequence[ShardedRow], out: Path) -> None:
        """``OUT/server.csv``: the skipped series, then each series run
        (what its shard stored)."""
        merged = list(self.skipped)
        for row in rows:
            ref = self.refs[row.folder]
            rec = self._table(out / shard_folder(row.shard)).get(
                row.folder, {})
            merged.append(ServerRow(
                ref.study_uid, ref.series_uid, row.status, row.findings,
                sr=self._store_status(row, rec, 'sr'),
                seg=self._store_status(row, rec, 'seg'), reason=row.error))
        write_server_summary(merged, out / SERVER_SUMMARY)


@dataclass
class ShardedQuery:
    """What :func:`run_sharded_query` did.

    Args:
        rows (list[ShardedRow]): one per series run (``OUT/scans.csv``).
        skipped (list[ServerRow]): the series the query found that are
            not CT volumes, with the reason.
    """
    rows: List[ShardedRow]
    skipped: List[ServerRow]


def run_sharded_query(source: Any, settings: ShardedRun) -> ShardedQuery:
    """Ask the query once and run its series as shards (module doc).

    Args:
        source (DicomWebSettings | DimseSettings): the server, the query,
            whether results are stored back.
        settings (ShardedRun): as :func:`~mmlesion.apps.whole_scan.shards.
            run_sharded_inference`; ``OUT`` also gets ``server.csv``.

    Returns:
        ShardedQuery: the series run and those skipped.

    Raises:
        DicomServerError: the server cannot be queried: nothing has run.
    """
    found = find_series(source.connect(), source.query)
    skipped = skipped_rows(found, settings.log, settings.log)
    if not found.to_run:
        out = Path(settings.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_server_summary(skipped, out / SERVER_SUMMARY)
        return ShardedQuery([], skipped)
    rows = run_sharded_inference(SeriesWork(source, found), settings)
    return ShardedQuery(rows, skipped)
