# Copyright (c) mmlesion contributors. All rights reserved.
from typing import Tuple, Union

__version__ = '0.1.0'


def parse_version_info(version_str: str) -> Tuple[Union[int, str], ...]:
    """Parse a version string like ``'0.1.0'`` into a tuple of its parts:
    ints, and strings where a part is not a number (``'rc1'``)."""
    return tuple(int(x) if x.isdigit() else x for x in version_str.split('.'))


version_info = parse_version_info(__version__)
