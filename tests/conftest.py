# Copyright (c) mmlesion contributors. All rights reserved.
"""Fixtures shared by the whole suite."""
import locale
import logging
import os
import sys
import uuid
from pathlib import Path

import pytest
from mmengine.logging import MMLogger

# ``projects/`` (not installed, as in mmdet) is imported from the clone.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

# Two cores in CI: keep each test process from oversubscribing them.
os.environ.setdefault('OMP_NUM_THREADS', '2')


@pytest.fixture(scope='session')
def tiny_demo_root(tmp_path_factory) -> Path:
    """A small synthetic DeepLesion set (release layout), made once per run.

    10 train, 4 val and 2 test key slices of 256 x 256 pixels: enough for a
    few training iterations of the demo config.
    """
    from mmlesion.datasets.demo import generate_demo_deeplesion
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
