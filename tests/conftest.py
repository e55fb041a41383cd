# Copyright (c) mmlesion contributors. All rights reserved.
"""Fixtures shared by the whole suite."""
import logging
import os
from pathlib import Path

import pytest
from mmengine.logging import MMLogger

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
    logger = MMLogger.get_instance(f'test_log_messages_{id(object())}')
    handler = _ListHandler()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)
