# Copyright (c) mmlesion contributors. All rights reserved.
"""pytest's rewritten test files, made once for both xdist workers.

Each worker collects every test file, and pytest rewrites a file's asserts
before it compiles it: most of a collection's CPU (24 s cold, 4 s with the
rewrites cached, one process, ``--collect-only -n 0``). pytest caches a
rewrite in ``__pycache__`` only where bytecode may be written (not under
``PYTHONDONTWRITEBYTECODE``), and two workers starting together rewrite the
same files at the same time anyway. Here, before the collection, the first
worker rewrites and caches the files from the front of the list and the
second from the back, each skipping what is cached already: where they
meet, every file is cached once, and both collections read the cache. The
cache is pytest's own (its format and checks), written atomically as pytest
writes it. A cold start of the suite's two workers (``-k`` selecting no
test, 2 cores) took 34-42 s without this and 28.5-29.4 s with it.
"""
import importlib.util
import os
from fnmatch import fnmatch
from pathlib import Path

#: The workers that share the rewriting, and their direction.
_DIRECTION = {'gw0': 1, 'gw1': -1}


def _cached(source: Path, pyc: Path) -> bool:
    """Whether ``pyc`` holds a rewrite of ``source`` as it is now: the
    header pytest checks before it loads one (a hash-based pyc of PEP 552,
    this Python's magic number, flags "checked hash", the source's hash)."""
    try:
        with open(pyc, 'rb') as f:
            head = f.read(16)
    except OSError:
        return False
    return head == (importlib.util.MAGIC_NUMBER + b'\x03\x00\x00\x00' +
                    importlib.util.source_hash(source.read_bytes()))


def _test_files(config) -> list:
    """The files pytest rewrites in this run: its test files (``python_files``)
    and ``conftest.py`` files under the run's paths, sorted."""
    patterns = config.getini('python_files')
    files = set()
    for arg in config.args:
        path = Path(str(arg).split('::', 1)[0])
        if not path.is_absolute():
            path = Path(config.invocation_params.dir) / path
        found = [path] if path.is_file() else path.rglob('*.py')
        files.update(p for p in found
                     if p.name == 'conftest.py' or
                     any(fnmatch(p.name, pat) for pat in patterns))
    return sorted(files)


def share_rewrites(config) -> int:
    """On xdist's first two workers, rewrite and cache this run's test files
    from opposite ends (see the module's docstring). Returns how many files
    this worker rewrote; 0 where there is nothing to share (one process,
    ``--assert=plain``, another pytest than this module knows)."""
    direction = _DIRECTION.get(os.environ.get('PYTEST_XDIST_WORKER', ''))
    if direction is None or config.getoption('assertmode') != 'rewrite':
        return 0
    try:
        from _pytest.assertion.rewrite import (PYC_TAIL, _rewrite_test,
                                               _write_pyc, assertstate_key,
                                               get_cache_dir, try_makedirs)
    except ImportError:  # pytest's private names moved: collect as usual
        return 0
    state = config.stash[assertstate_key]
    rewritten = 0
    for source in _test_files(config)[::direction]:
        cache_dir = get_cache_dir(source)
        pyc = cache_dir / (source.name[:-3] + PYC_TAIL)
        if _cached(source, pyc) or not try_makedirs(cache_dir):
            continue
        source_hash, code = _rewrite_test(source, config)
        rewritten += _write_pyc(state, code, source_hash, pyc)
    return rewritten
