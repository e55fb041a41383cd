# Copyright (c) mmlesion contributors. All rights reserved.
"""numpy's transparent-huge-page advice (``_set_madvise_hugepage``, for
the whole process), switched for a block of work: where the kernel has no
free 2 MiB blocks at hand, a huge-page fault costs far more than small
pages.
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
    """Whether numpy advises huge pages now (None: it cannot); read by
    setting it and putting it back."""
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
