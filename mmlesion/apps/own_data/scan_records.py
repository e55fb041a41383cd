# Copyright (c) mmlesion contributors. All rights reserved.
"""Per-scan records of a conversion, so that a killed run resumes.

Each converted scan leaves ``<out_file>.parts/<md5 of its id>.json``: its
annotation entry, its 2D-export rows, the settings it was made with and the
size and modification time of its inputs. A run takes a matching record
instead of converting the scan again; the folder is removed once the
annotation file is written. The folder is made before anything is written
(:func:`start_run`) and removed last, so it marks an unfinished run the
same command resumes (:func:`resumes_run`).
"""
import contextlib
import hashlib
import json
import os
import os.path as osp
from typing import List, Optional, TypedDict

from mmlesion.utils.writing.atomic import (atomic_write_json,
                                           remove_stale_temporaries)

#: The file of a records folder naming the run that made it.
RUN_FILE = 'run.json'


def records_dir(out_file: str) -> str:
    """The folder of the records of a conversion to ``out_file``."""
    return osp.abspath(out_file) + '.parts'


def _run_facts(out_file: str, export_dir: Optional[str]) -> dict:
    return dict(out_file=osp.abspath(out_file),
                export_dir=osp.abspath(export_dir) if export_dir else None)


def resumes_run(out_file: str, export_dir: Optional[str] = None) -> bool:
    """Whether a conversion to ``out_file`` (and ``export_dir``) began and
    did not finish: its outputs so far may be written over."""
    try:
        with open(osp.join(records_dir(out_file), RUN_FILE),
                  encoding='utf-8') as f:
            return json.load(f) == _run_facts(out_file, export_dir)
    except (OSError, ValueError):
        return False


def unfinished_run(out_file: str) -> Optional[str]:
    """The records folder of a conversion to ``out_file`` that began and
    did not finish (its outputs may be partial), else None."""
    folder = records_dir(out_file)
    return folder if osp.isfile(osp.join(folder, RUN_FILE)) else None


def start_run(out_file: str, export_dir: Optional[str] = None) -> None:
    """Mark a conversion as begun, before it writes anything (the records
    folder with its ``run.json``; temporaries a killed run left in it are
    removed)."""
    folder = records_dir(out_file)
    os.makedirs(folder, exist_ok=True)
    remove_stale_temporaries(folder)
    atomic_write_json(osp.join(folder, RUN_FILE),
                      _run_facts(out_file, export_dir))


def input_stamp(paths: List[Optional[str]]) -> List[list]:
    """``[path, size, mtime_ns]`` of each input file (every file of a
    folder, such as a DICOM series)."""
    stamp = []
    for path in filter(None, paths):
        files = [path] if not osp.isdir(path) else sorted(
            osp.join(d, f) for d, _, fs in os.walk(path) for f in fs)
        for f in files:
            st = os.stat(f)
            stamp.append([f, st.st_size, st.st_mtime_ns])
    return stamp


def _record_path(out_file: str, volume_id: str) -> str:
    name = hashlib.md5(str(volume_id).encode()).hexdigest()
    return osp.join(records_dir(out_file), name + '.json')


class ScanRecord(TypedDict):
    """A scan's record (JSON): the settings ``key`` and the inputs'
    ``stamp`` (:func:`input_stamp`) it was made with; its writer adds the
    rest (a conversion: the annotation entry and the export's parts; a
    fingerprint: the scan's facts)."""
    key: str
    inputs: List[list]


def read_record(out_file: str, volume_id: str, key: str,
                stamp: List[list]) -> Optional[ScanRecord]:
    """The record of a scan converted before with the same settings
    (``key``) from the same inputs (``stamp``), else None."""
    path = _record_path(out_file, volume_id)
    try:
        with open(path, encoding='utf-8') as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if record.get('key') != key or record.get('inputs') != stamp:
        return None
    return record


def write_record(out_file: str, volume_id: str,
                 record: ScanRecord) -> None:
    """Write the record of a converted scan (atomically)."""
    os.makedirs(records_dir(out_file), exist_ok=True)
    atomic_write_json(_record_path(out_file, volume_id), record)


def remove_records(out_file: str) -> None:
    """Remove the records once the outputs are written: ``run.json``
    after the others, so that a run killed while they are removed still
    resumes (an empty folder is what such a kill can leave at most:
    :func:`remove_empty_records`)."""
    folder = records_dir(out_file)
    if not osp.isdir(folder):
        return
    for name in sorted(os.listdir(folder), key=lambda n: n == RUN_FILE):
        with contextlib.suppress(OSError):  # files only (records, temps)
            os.remove(osp.join(folder, name))
    remove_empty_records(out_file)


def remove_empty_records(out_file: str) -> None:
    """Remove the records folder of ``out_file`` if it is empty (a run
    killed after its last record was removed)."""
    with contextlib.suppress(OSError):
        os.rmdir(records_dir(out_file))
