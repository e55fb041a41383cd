# Copyright (c) mmlesion contributors. All rights reserved.
"""An input file's checks before it is read: no regular file, not UTF-8,
a partial last row (every CSV writer ends each row with a line end), the
wrong separator, world coordinates no scanner gives.
"""
import csv
import os
import os.path as osp
import stat

#: World coordinates (mm) beyond this in an annotation or result file are
#: absurd (a scanner's field is about 1 m): refused by its readers.
MAX_WORLD_MM = 1e5


_FILE_KINDS = ((stat.S_ISFIFO, 'a FIFO (named pipe)'),
               (stat.S_ISCHR, 'a character device'),
               (stat.S_ISBLK, 'a block device'),
               (stat.S_ISSOCK, 'a socket'), (stat.S_ISDIR, 'a folder'))


def check_regular_file(path: str, what: str = 'file') -> None:
    """Refuse anything but a regular file (links followed) before opening
    it: reading a FIFO or a device may hang forever.

    Args:
        path (str): the path.
        what (str): what the file is, named in the error.

    Raises:
        FileNotFoundError: the path (or the target of a link) is missing.
        ValueError: naming the file and its kind, for a FIFO, a device, a
            socket or a folder.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f'{path}: {what} not found' + (
            ' (a broken link)' if osp.islink(path) else '')) from None
    except OSError as err:
        raise ValueError(f'{path}: {what} cannot be read ({err})') from None
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _FILE_KINDS if test(mode)),
                'not a regular file')
    raise ValueError(
        f'{path}: {what} is {kind}, not a regular file; refusing to open it '
        '(reading a pipe or a device can block forever)')


def read_csv_text(path: str, what: str = 'CSV') -> str:
    """A CSV file as text (:func:`read_utf8_text`) whose last row is
    complete (:func:`check_csv_complete`).

    Args:
        path (str): the file.
        what (str): what the file is, named in errors.

    Returns:
        str: the text, without a BOM.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: one line naming the file (and the line of the first
            undecodable byte): not a regular file, UTF-16, not UTF-8, a
            partial last row.
    """
    text = read_utf8_text(path, what, ', e.g. "CSV UTF-8" in a spreadsheet')
    check_csv_complete(path)
    return text


def read_utf8_text(path: str, what: str, hint: str = '') -> str:
    """A text file a user gives (UTF-8, with or without a BOM), refused in
    one line when UTF-16 or not UTF-8.

    Args:
        path (str): the file.
        what (str): what the file is, named in errors (``'CSV'``,
            ``'--scan-list'``).
        hint (str): after "re-save it as UTF-8" (how, for this file).

    Returns:
        str: the text, without a BOM.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: one line naming the file (and the line of the first
            undecodable byte).
    """
    check_regular_file(path, f'{what} file')
    with open(path, 'rb') as f:
        data = f.read()
    if data.startswith((b'\xff\xfe', b'\xfe\xff')) or b'\x00' in data[:200]:
        raise ValueError(
            f'{path}: UTF-16 encoded (byte-order mark or NUL bytes); a '
            f'{what} file must be UTF-8 (or ASCII) text: re-save it as '
            f'UTF-8{hint}')
    try:
        text = data.decode('utf-8-sig')
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b'\n') + 1
        raise ValueError(
            f'{path} line {line}: not UTF-8 text (byte '
            f'0x{data[err.start]:02x} at file offset {err.start}; another '
            'encoding such as Latin-1 or Windows-1252?): re-save the file '
            'as UTF-8') from None
    return text


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


#: Field separators a spreadsheet may save a "CSV" with, and their names.
OTHER_DELIMITERS = {';': 'semicolons', '\t': 'tabs'}


def _fields(line: str, delimiter: str) -> int:
    return len(next(csv.reader([line], delimiter=delimiter), []))


def check_csv_delimiter(path: str, text: str, what: str = 'CSV') -> None:
    """Refuse a table whose fields are separated by semicolons or tabs
    instead of commas, naming the line and the separator: rather than
    read, as its numbers may carry decimal commas (``1,500``: 1.5 or
    1500?).

    Args:
        path (str): the file (named in the error).
        text (str): its text (:func:`read_csv_text`).
        what (str): what the file is (e.g. ``world boxes``), named in the
            error.

    Raises:
        ValueError: one line naming the file, the line, the separator
            found and what to do.
    """
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return
    columns = _fields(lines[first], ',')
    for number, line in enumerate(lines[first:], first + 1):
        if not line.strip():
            continue
        commas = _fields(line, ',')
        for delimiter, name in OTHER_DELIMITERS.items():
            found = _fields(line, delimiter)
            if (number == first + 1 and commas == 1 and found > 1) or (
                    number > first + 1 and commas != columns
                    and found == columns):
                count = line.count(',')
                raise ValueError(
                    f'{path} line {number}: the fields are separated by '
                    f'{name} ({line.count(delimiter)} {delimiter!r} and '
                    f"{count or 'no'} ',' on that line): a {what} CSV must "
                    'be comma-separated. Save it as "CSV (comma '
                    'delimited)" with the point as decimal mark, or '
                    'replace the decimal commas by points and then the '
                    f'{name} by commas')
