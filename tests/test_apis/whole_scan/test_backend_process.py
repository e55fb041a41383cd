# Copyright (c) mmlesion contributors. All rights reserved.
"""The CPU backends' tests (``test_backend.py``) in a fresh interpreter:
OpenVINO's runtime, once loaded in a process, makes it die at a later fork,
so an xdist worker that ran them died on its next ``subprocess.run``."""
import os
import subprocess
import sys

import pytest

from mmlesion.testing import repo_root

pytest.importorskip('onnxruntime')
pytest.importorskip('openvino')


def test_the_backend_tests_pass_in_their_own_process():
    out = subprocess.run(
        [sys.executable, '-m', 'pytest', '-n', '0', '-q', '-p',
         'no:randomly', 'tests/test_apis/whole_scan/test_backend.py'],
        cwd=repo_root(), env=dict(os.environ, MMLESION_BACKEND_PROCESS='1'),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=900)
    assert out.returncode == 0, out.stdout[-6000:]
    assert ' passed' in out.stdout and ' skipped' not in out.stdout, \
        out.stdout[-2000:]
