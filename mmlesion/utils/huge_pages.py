# Copyright (c) mmlesion contributors. All rights reserved.
"""numpy's transparent-huge-page advice, switched for a block of work.

numpy asks Linux for transparent huge pages (``madvise(MADV_HUGEPAGE)``)
for every array of 4 MiB or more: the first writes into a new array then
fault in 2 MiB pages instead of 4 KiB ones. Where the kernel has free
2 MiB blocks at hand that is cheaper. Where it has not (memory handed back
and forth in large arrays, as a batch of scans does, or a virtual machine
returning freed blocks to its host), a huge-page fault can cost far more
(``docs/benchmarks.md``, "A day's scans"). The switch is numpy's own
(``numpy._core.multiarray._set_madvise_hugepage``, the one
``NUMPY_MADVISE_HUGEPAGE`` sets at import) and holds for the whole process
while set: every thread's new arrays, and processes forked meanwhile.
numpy offers no way to read it but to set it (the previous state comes
back): :func:`numpy_huge_pages_enabled` sets it and puts it back at once.
"""
import contextlib
from typing import Callable, Iterator, Optional


def _switch() -> Optional[Callable[[bool], bool]]:
    """numpy's switch (it returns the previous state), or None where this
    numpy has none (not Linux, or another layout)."""
    for name in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        try:
            module = __import__(name, fromlist=['_set_madvise_hugepage'])
        except ImportError:
            continue
        switch = getattr(module, '_set_madvise_hugepage', None)
        if switch is not None:
            return switch
    return None


def numpy_huge_pages_enabled() -> Optional[bool]:
    """Whether numpy advises huge pages now (None: it cannot)."""
    switch = _switch()
    if switch is None:
        return None
    state = bool(switch(True))
    switch(state)
    return state


@contextlib.contextmanager
def numpy_huge_pages(enabled: Optional[bool]) -> Iterator[None]:
    """Set numpy's huge-page advice for the block, then restore it.

    Args:
        enabled (bool, optional): advise huge pages for new large arrays
            (numpy's default) or not; None leaves numpy's setting as it is.

    Yields:
        None: while the block runs.
    """
    switch = None if enabled is None else _switch()
    if switch is None:
        yield
        return
    previous = bool(switch(bool(enabled)))
    try:
        yield
    finally:
        switch(previous)


__all__ = ['numpy_huge_pages', 'numpy_huge_pages_enabled']
