# Copyright (c) mmlesion contributors. All rights reserved.
"""The GPU install path: mmcv 2.1.0's include fix and tools/install_gpu.sh
(the build itself needs CUDA and is not run here)."""
import importlib.util
import os
import subprocess
import sys

import pytest
import torch

from mmlesion.testing import repo_root


def _patcher():
    spec = importlib.util.spec_from_file_location(
        'patch_mmcv_cuda', repo_root() / 'tools' / 'misc' /
        'patch_mmcv_cuda.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_include_is_rewritten_once(tmp_path, capsys):
    tool = _patcher()
    common = tmp_path / 'mmcv' / 'ops' / 'csrc' / 'common'
    common.mkdir(parents=True)
    helper = common / 'pytorch_cuda_helper.hpp'
    helper.write_text('#include <ATen/ATen.h>\n#include <THC/THCAtomics.cuh>'
                      '\n#define X 1\n')
    deform = common / 'cuda' / 'ms_deform_attn_cuda.cu'
    deform.parent.mkdir()
    deform.write_text('#include "THC/THCAtomics.cuh"\n')
    other = common / 'box_iou.cpp'
    other.write_text('int f();\n')
    assert tool.main([str(tmp_path)]) == 0
    assert 'patched 2 file(s)' in capsys.readouterr().out
    assert helper.read_text() == ('#include <ATen/ATen.h>\n'
                                  '#include <ATen/cuda/Atomic.cuh>\n'
                                  '#define X 1\n')
    assert deform.read_text() == '#include "ATen/cuda/Atomic.cuh"\n'
    assert other.read_text() == 'int f();\n'
    assert tool.patch_mmcv_sources(str(tmp_path)) == []  # idempotent
    assert not list(tmp_path.rglob('*.patching'))


def test_not_an_mmcv_tree(tmp_path, capsys):
    assert _patcher().main([str(tmp_path)]) == 1
    assert 'not an mmcv source tree' in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason='has a GPU')
def test_install_script_refuses_without_cuda():
    script = repo_root() / 'tools' / 'install_gpu.sh'
    assert subprocess.run(['bash', '-n', str(script)]).returncode == 0
    proc = subprocess.run(['bash', str(script)], capture_output=True,
                          text=True, timeout=300,
                          env=dict(os.environ, PATH=os.path.dirname(
                              sys.executable) + os.pathsep +
                              os.environ['PATH']))
    assert proc.returncode == 1
    assert 'install the CUDA build of torch first' in proc.stderr
