# Copyright (c) mmlesion contributors. All rights reserved.
"""numpy's transparent-huge-page advice, switched for a block of work.

numpy asks Linux for transparent huge pages for every array of 4 MiB or
more; where the kernel has no free 2 MiB blocks at hand (memory handed back
and forth in large arrays, as a batch of scans does) a huge-page fault can
cost far more than small pages. The switch is numpy's own
(``_set_madvise_hugepage``, set by ``NUMPY_MADVISE_HUGEPAGE`` at import)
and holds for the whole process while set. numpy can only read it by
setting it: :func:`numpy_huge_pages_enabled` sets it and puts it back.
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
