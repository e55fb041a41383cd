# Copyright (c) mmlesion contributors. All rights reserved.
"""Silence the known start-up warnings of mmlesion's stack, in one place.

These warnings come from the pinned libraries, not from anything a user
does, and a user can do nothing about them; printed at every start they
hide the messages that matter:

* ``pkg_resources is deprecated as an API`` (setuptools >= 80):
  ``mmengine.utils.package_utils`` imports (and reloads) ``pkg_resources``
  whenever a config inherits from ``mmdet::`` configs, so every training or
  test run printed it two or three times.
* ``MultiScaleDeformableAttention has been moved`` (mmcv 2.x,
  ``ImportWarning``) and ``torch.jit.script`` / ``torch.jit.interface`` are
  deprecated (torch >= 2.6, ``DeprecationWarning``), both raised while mmcv
  and mmdet are imported.

Only these messages are filtered (by text and category); every other
warning is shown as Python's defaults say. The filters are inserted in
front of those of ``-W`` / ``PYTHONWARNINGS``; to see the known warnings
again, run with ``MMLESION_SHOW_STACK_WARNINGS=1``.
"""
import os
import warnings
from typing import List, Tuple, Type

#: ``(message regex, category)`` of each known warning.
KNOWN_WARNINGS: List[Tuple[str, Type[Warning]]] = [
    (r'pkg_resources is deprecated as an API', UserWarning),
    (r'Deprecated call to `pkg_resources\.declare_namespace',
     DeprecationWarning),
    (r'``MultiScaleDeformableAttention`` has been moved', ImportWarning),
    (r'`torch\.jit\.(script|interface)` is deprecated', DeprecationWarning),
]

#: Set to ``1`` to keep the known warnings.
SHOW_ENV = 'MMLESION_SHOW_STACK_WARNINGS'


def silence_known_warnings() -> None:
    """Install ``ignore`` filters for :data:`KNOWN_WARNINGS`.

    Idempotent (``warnings.filterwarnings`` drops an identical filter
    before adding it again); a no-op with ``MMLESION_SHOW_STACK_WARNINGS=1``.
    """
    if os.environ.get(SHOW_ENV) == '1':
        return
    for message, category in KNOWN_WARNINGS:
        warnings.filterwarnings('ignore', message=message, category=category)
