# Copyright (c) mmlesion contributors. All rights reserved.
"""Per-scan records of a conversion, so that a killed run resumes.

Each converted scan leaves ``<out_file>.parts/<md5 of its id>.json``: its
annotation entry, its 2D-export rows, the settings it was made with and the
size and modification time of its inputs. A run takes a matching record
instead of converting the scan again; the folder is removed once the
annotation file is written.
"""
import hashlib
import json
import os
import os.path as osp
import shutil
from typing import List, Optional

from mmlesion.utils.writing.atomic import atomic_write_json


def records_dir(out_file: str) -> str:
    """The folder of the records of a conversion to ``out_file``."""
    return osp.abspath(out_file) + '.parts'


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


def read_record(out_file: str, volume_id: str, key: str,
                stamp: List[list]) -> Optional[dict]:
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


def write_record(out_file: str, volume_id: str, record: dict) -> None:
    """Write the record of a converted scan (atomically)."""
    os.makedirs(records_dir(out_file), exist_ok=True)
    atomic_write_json(_record_path(out_file, volume_id), record)


def remove_records(out_file: str) -> None:
    """Remove the records once the annotation file is written."""
    shutil.rmtree(records_dir(out_file), ignore_errors=True)
