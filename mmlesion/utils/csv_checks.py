# Copyright (c) mmlesion contributors. All rights reserved.
"""Refuse a CSV file whose last row was cut off (a half-written file).

A run killed while writing ``candidates.csv`` leaves a file whose last row
stops in the middle: ``...,0.87`` instead of ``...,0.8731``, or a row with
fewer fields. Every CSV writer (Python's :mod:`csv`, pandas, a spreadsheet)
ends each row with a line end, so a non-empty file without one at the end
has a partial last row. Wrong field counts are checked by the readers
themselves, naming the line.
"""
import os
import os.path as osp

#: World coordinates (mm) beyond this in an annotation or result file are
#: absurd (a scanner's field is about 1 m): refused by its readers.
MAX_WORLD_MM = 1e5


def check_csv_complete(path: str) -> None:
    """Raise if a non-empty CSV does not end with a line end.

    Args:
        path (str): the CSV file.

    Raises:
        ValueError: naming the file and the line of the partial row.
    """
    size = osp.getsize(path)
    if size == 0:
        return
    with open(path, 'rb') as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) in (b'\n', b'\r'):
            return
        handle.seek(0)
        lines = sum(chunk.count(b'\n')
                    for chunk in iter(lambda: handle.read(1 << 20), b''))
    raise ValueError(
        f'{path} line {lines + 1}: the last row has no line end: a partial '
        'row of a half-written file (a run killed while writing it?); '
        'refusing to read it. Write the file again, or add the line end '
        'if that row is complete')
