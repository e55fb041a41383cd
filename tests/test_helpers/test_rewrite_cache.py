# Copyright (c) mmlesion contributors. All rights reserved.
import types

import pytest
from _pytest.assertion.rewrite import PYC_TAIL, _read_pyc

from tests.helpers.rewrite_cache import share_rewrites

FAILING = 'def test_it():\n    x = [1, 2]\n    assert len(x) == 3\n'


def _config(request, tmp_path, args):
    """The session's config (its ini, options and assertion state) seen
    running ``args`` from ``tmp_path``."""
    real = request.config
    return types.SimpleNamespace(
        args=args, getini=real.getini, getoption=real.getoption,
        stash=real.stash, invocation_params=types.SimpleNamespace(
            dir=tmp_path))


def _pyc(path):
    return path.parent / '__pycache__' / (path.stem + PYC_TAIL)


def _files(tmp_path):
    (tmp_path / 'sub').mkdir()
    files = [tmp_path / 'conftest.py', tmp_path / 'sub' / 'test_a.py',
             tmp_path / 'test_b.py']
    for f in files:
        f.write_text(FAILING)
    (tmp_path / 'helper.py').write_text(FAILING)  # not a test file
    return files


@pytest.mark.parametrize('worker', ['gw0', 'gw1'])
def test_a_worker_caches_what_pytest_reads(request, tmp_path, monkeypatch,
                                           worker):
    if request.config.getoption('assertmode') != 'rewrite':
        pytest.skip('asserts are not rewritten in this run')
    files = _files(tmp_path)
    monkeypatch.setenv('PYTEST_XDIST_WORKER', worker)
    config = _config(request, tmp_path, ['.'])
    assert share_rewrites(config) == 3
    assert not _pyc(tmp_path / 'helper.py').exists()
    for f in files:
        code = _read_pyc(f, _pyc(f))
        assert code is not None, f  # pytest takes it as its own cache
        space = {}
        exec(code, space)
        with pytest.raises(AssertionError) as raised:
            space['test_it']()
        assert 'where 2 = len([1, 2])' in str(raised.value)  # rewritten
    # cached: a second worker (or run) rewrites nothing
    assert share_rewrites(config) == 0
    # an edited file is rewritten again, alone
    files[1].write_text(FAILING.replace('3', '4'))
    assert share_rewrites(config) == 1


def test_the_two_workers_start_from_opposite_ends(request, tmp_path,
                                                  monkeypatch):
    if request.config.getoption('assertmode') != 'rewrite':
        pytest.skip('asserts are not rewritten in this run')
    files = _files(tmp_path)
    config = _config(request, tmp_path, [str(tmp_path / 'sub'), 'test_b.py'])
    order = []
    import tests.helpers.rewrite_cache as cache
    real = cache._cached

    def first_only(source, pyc):
        order.append(source)
        return True  # as if cached: nothing written

    monkeypatch.setattr(cache, '_cached', first_only)
    for worker in ('gw0', 'gw1'):
        monkeypatch.setenv('PYTEST_XDIST_WORKER', worker)
        assert share_rewrites(config) == 0
    # the run's paths only (not the conftest above them), one each way
    assert order == [files[1], files[2], files[2], files[1]]
    monkeypatch.setattr(cache, '_cached', real)
    # one process, or a third worker: nothing shared
    for worker in ('', 'gw2'):
        monkeypatch.setenv('PYTEST_XDIST_WORKER', worker)
        assert share_rewrites(config) == 0
    assert not any(_pyc(f).exists() for f in files)
