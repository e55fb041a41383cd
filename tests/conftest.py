# Copyright (c) mmlesion contributors. All rights reserved.
"""Fixtures shared by the whole suite."""
import gc
import locale
import logging
import os
import sys
import uuid
from pathlib import Path

import pytest

# Two cores in CI, shared by pytest-xdist's workers (pytest.ini): each test
# process gets its share of the cores, so none oversubscribes them. The
# user's own OMP_NUM_THREADS wins; the controller's choice (one process's:
# all cores) is not a worker's, though the workers inherit its environment
# (with two workers of two spinning OpenMP threads each on 2 cores, tiny
# trainings ran 2 to 10 times their time).
_WORKERS = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
if not os.environ.setdefault('MMLESION_TEST_USER_THREADS',
                             os.environ.get('OMP_NUM_THREADS', '')):
    os.environ['OMP_NUM_THREADS'] = str(
        max(1, min(2, (os.cpu_count() or 2) // _WORKERS)))

from mmengine.logging import MMLogger  # noqa: E402  (after the threads)

# ``projects/`` (not installed, as in mmdet) is imported from the clone.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.helpers.config_cache import memoize_metafile_lookup  # noqa: E402
from tests.helpers.data_roots import name_lab_shared_data  # noqa: E402
from tests.helpers.rewrite_cache import share_rewrites  # noqa: E402

name_lab_shared_data()  # the real data beside the clone, where none is named

memoize_metafile_lookup()  # mmdet's metafiles parsed once per process


#: The test files that take a minute or more on 2 cores (``--durations``),
#: slowest first: they start first, so no worker is left with one of them
#: at the end while the other idles.
SLOW_FIRST = (
    'tests/test_projects/own_data/test_known_truth.py',
    'tests/test_apps/test_reproduce/test_e2e_lens.py',
    'tests/test_apps/test_reproduce/test_e2e_aggregated3d.py',
    'tests/test_projects/own_data/test_known_truth_real.py',
    'tests/test_apis/whole_scan/test_backend_process.py',
    'tests/test_docs/test_docs_run.py',
    'tests/test_tools/test_reproduce.py',
    'tests/test_apps/test_reproduce/test_e2e_elixirnet.py',
    'tests/test_apps/test_reproduce/test_e2e_elixirnet_rows.py',
    'tests/test_projects/retinanet_lesion/test_eval_retinanet_lesion_demo.py',
    'tests/test_projects/lens/test_lens_demo_tool.py',
    'tests/test_tools/test_train_test.py',
    'tests/test_tools/test_search_alb.py',
    'tests/test_apps/whole_scan/test_batch.py',
    'tests/test_configs/test_all_configs.py',
    'tests/test_projects/elixirnet/test_eval_elixirnet_demo.py',
    'tests/test_projects/study_demo/test_study_seed_jobs.py',
)

#: The files whose tests use the one-node Slurm cluster (``slurm_cluster``,
#: one per session): they run on one worker.
SLURM_FILES = (
    'tests/test_apps/test_reproduce/test_slurm.py',
    'tests/test_tools/test_slurm_tools.py',
    'tests/test_tools/test_luna16_cv.py',
    'tests/test_apps/whole_scan/test_shards_slurm.py',
)


#: The files whose tests share an expensive module-scoped fixture (a DDP run
#: of two ranks, each importing torch and mmdet; a fresh interpreter
#: importing mmlesion; a bare zygote; an architecture search): their tests
#: run on one worker, so the fixture runs once, not once per worker that got
#: one of them (``--durations`` showed it set up on both).
TOGETHER_FILES = (
    'tests/test_methods/test_lens/test_models/test_lens_ddp_step.py',
    'tests/test_methods/test_lens/test_datasets/test_batch_sampler_ddp.py',
    'tests/test_cli/test_import_mmlesion.py',
    'tests/test_apps/test_not_loaded_by_core.py',
    'tests/test_methods/test_elixirnet/test_nas/test_search_loop.py',
    'tests/test_methods/test_elixirnet/test_nas/test_random_search.py',
)


def pytest_sessionstart(session):
    """The two workers rewrite the test files' asserts from opposite ends of
    the list before they collect, into pytest's cache, even where bytecode
    is not written otherwise (:mod:`tests.helpers.rewrite_cache`)."""
    share_rewrites(session.config)


def pytest_collection_modifyitems(config, items):
    """Start the slow files first (:data:`SLOW_FIRST`; the order inside a
    file is kept): the workers take the tests in this order."""
    listed = SLOW_FIRST + SLURM_FILES + TOGETHER_FILES
    missing = [f for f in listed if not (Path(_ROOT) / f).is_file()]
    if missing:
        raise pytest.UsageError(f'conftest names no such file: {missing}')
    rank = {f: i for i, f in enumerate(SLOW_FIRST)}
    order = {id(item): i for i, item in enumerate(items)}
    items.sort(key=lambda item: (rank.get(item.nodeid.split('::')[0],
                                          len(rank)), order[id(item)]))


def pytest_collection_finish(session):
    """Freeze what the collection made (the test modules, torch, mmdet,
    mmlesion: some 600,000 objects, alive for the session) out of the
    garbage collector's reach: each full collection in a test (mmengine's
    datasets call ``gc.collect()`` when they serialize their data) then
    walks only what the tests made, instead of 0.4 s of CPU a collection.
    """
    gc.collect()
    gc.freeze()


def pytest_xdist_make_scheduler(config, log):
    """Each test its own unit of work, but the Slurm files together on one
    worker (one local cluster per session: ``slurm_cluster``) and each of
    :data:`TOGETHER_FILES` on one worker (its module fixture once).

    Whole files per worker were tried: slower (1,012 s against 975 s on 2
    cores) and two tests failed that pass in any other order
    (``test_search_alb.py::test_demo_search_writes_a_config_that_trains``,
    ``whole_scan/test_infer.py::test_planted_lesion_is_found_at_its_world_
    position``): they depend on what ran before them in the process. xdist's
    own ``loadgroup`` cannot group tests under pytest 9 (it rewrites node
    ids, which pytest 9 derives afresh).
    """
    from xdist.scheduler import LoadScopeScheduling

    class SlurmTogether(LoadScopeScheduling):

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split('::', 1)[0]
            if path in SLURM_FILES:
                return 'slurm'
            return path if path in TOGETHER_FILES else nodeid

    return SlurmTogether(config, log)


@pytest.fixture(scope='session')
def tiny_demo_root(tmp_path_factory) -> Path:
    """A small synthetic DeepLesion set (release layout), made once per run.

    10 train, 4 val and 2 test key slices of 256 x 256 pixels: enough for a
    few training iterations of the demo config.
    """
    from mmlesion.apps.demo import generate_demo_deeplesion
    root = tmp_path_factory.mktemp('demo') / 'demo_deeplesion'
    generate_demo_deeplesion(
        root, seed=1, num_train=10, num_val=4, num_test=2)
    return root


class _ListHandler(logging.Handler):

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def log_messages():
    """Messages logged through the current ``MMLogger`` during the test."""
    # A new name each time: a reused name (``id`` of a freed object) returns
    # the old logger, which is then not the current one, and the messages of
    # the test go elsewhere (seen when mutmut runs the tests in another
    # order).
    logger = MMLogger.get_instance(f'test_log_messages_{uuid.uuid4().hex}')
    handler = _ListHandler()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


@pytest.fixture(autouse=True)
def _locale_unchanged():
    """Fail a test that leaves the process locale changed.

    A changed ``LC_CTYPE`` (SimpleITK's GDCM writer sets ``"C"``) makes
    every later ``open()`` without an encoding ASCII, and some unrelated
    test far later fails on a ``±``; this names the test that did it.
    """
    before = locale.setlocale(locale.LC_ALL)
    yield
    after = locale.setlocale(locale.LC_ALL)
    if after != before:
        locale.setlocale(locale.LC_ALL, before)
        pytest.fail(f'the test changed the process locale ({before!r} -> '
                    f'{after!r}); restore it (e.g. mmlesion.testing.'
                    'volume_files.keep_locale)')


@pytest.fixture(scope='session')
def slurm_cluster():
    """A one-node Slurm cluster for the session (skips where it cannot):
    :class:`tests.helpers.slurm_cluster.LocalSlurmCluster`."""
    import shutil
    import tempfile

    from tests.helpers.slurm_cluster import (LocalSlurmCluster,
                                                SlurmUnavailable,
                                                unavailable_reason)
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f'no local Slurm cluster: {reason}')
    root = tempfile.mkdtemp(prefix='mmlesion-slurm-')  # short: Unix socket
    cluster = LocalSlurmCluster(root)
    try:
        cluster.start()
    except SlurmUnavailable as err:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f'no local Slurm cluster: {err}')
    yield cluster
    cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope='session')
def _zygote():
    """One zygote per test process (:mod:`tests.helpers.zygote`)."""
    from tests.helpers.zygote import Zygote
    zygote = Zygote()
    yield zygote
    zygote.close()


def _forked_runs(zygote, monkeypatch, python_c: bool) -> None:
    """``subprocess.run`` forking from ``zygote`` for this test."""
    import subprocess

    from tests.helpers.zygote import zygote_subprocess_run
    monkeypatch.setattr(subprocess, 'run',
                        zygote_subprocess_run(zygote, python_c))


@pytest.fixture
def tools_forked(_zygote, monkeypatch):
    """``subprocess.run([sys.executable, '<tool>.py', ...])`` (a test's, or
    ``tools/reproduce.py``'s stages) forks a zygote that imported mmdet
    once instead of starting an interpreter: each command is still a
    process of its own, without the ~5 s of imports
    (:mod:`tests.helpers.zygote`)."""
    _forked_runs(_zygote, monkeypatch, python_c=False)


@pytest.fixture
def code_forked(_zygote, monkeypatch):
    """As ``tools_forked``, and ``python -c CODE`` commands too."""
    _forked_runs(_zygote, monkeypatch, python_c=True)
