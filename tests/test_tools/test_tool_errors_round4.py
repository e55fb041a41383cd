# Copyright (c) mmlesion contributors. All rights reserved.
"""Tools answer a wrong path with one line naming it and the fix, not a
traceback (issue 50, item 5): ``tools/train.py --work-dir A_FILE``, a
config path with a typo ("did you mean"), ``tools/test.py`` with a missing
checkpoint, and ``tools/infer_volume.py`` on an empty folder (without
GDCM's warnings before the error)."""
import importlib.util
import subprocess
import sys
from types import ModuleType
from typing import List

import pytest
import SimpleITK as sitk

from mmlesion.testing import repo_root

# `python tools/...` runs fork a process that imported mmdet once
# (conftest, tools_forked).
pytestmark = pytest.mark.usefixtures('tools_forked')

DEMO = 'configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'
#: The demo config's name with ``_`` for its last ``-``.
DEMO_TYPO = 'configs/demo/faster-rcnn_r18_fpn_36e_deeplesion_demo.py'


def _tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f'mmlesion_{name}_tool_round4', repo_root() / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stop_line(name: str, argv: List[str], monkeypatch) -> str:
    """What ``tools/<name>.py ARGV`` stops with (the one line Python
    prints on stderr for ``sys.exit(text)``, exit status 1)."""
    monkeypatch.setattr(sys, 'argv', [f'tools/{name}.py', *argv])
    with pytest.raises(SystemExit) as stop:
        _tool(name).main()
    line = stop.value.code
    assert isinstance(line, str) and line.startswith('error: ')
    assert '\n' not in line and 'Traceback' not in line
    return line


@pytest.fixture
def in_repo(monkeypatch):
    """Run from the repository root (config paths as a user types them)."""
    monkeypatch.chdir(repo_root())


@pytest.fixture
def checkpoint(tmp_path) -> str:
    path = tmp_path / 'ckpt' / 'epoch_12.pth'
    path.parent.mkdir()
    path.write_bytes(b'not read')
    return str(path)


@pytest.mark.parametrize('name', ['train', 'test'])
def test_work_dir_that_is_a_file(name, tmp_path, checkpoint, capsys,
                                 monkeypatch, in_repo):
    a_file = tmp_path / 'a.txt'
    a_file.write_text('mine')
    argv = [DEMO] + ([checkpoint] if name == 'test' else [])
    for work_dir, where in ((a_file, 'is a file'),
                            (a_file / 'sub', f'is inside {a_file}, a file')):
        line = _stop_line(name, argv + ['--work-dir', str(work_dir)],
                          monkeypatch)
        assert line == (f'error: --work-dir {work_dir} {where}; give a '
                        'folder (it is created if missing)')
    assert a_file.read_text() == 'mine'
    assert capsys.readouterr().err == ''


def test_train_work_dir_file_on_the_command_line(tmp_path):
    """The real process: exit status 1, one line on stderr."""
    a_file = tmp_path / 'a.txt'
    a_file.write_text('mine')
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', DEMO, '--work-dir', str(a_file)],
        cwd=repo_root(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f'error: --work-dir {a_file} is a file; give a folder (it is '
        'created if missing)']


@pytest.mark.parametrize('name', ['train', 'test'])
def test_config_typo_train_test(name, checkpoint, capsys, monkeypatch,
                                in_repo):
    argv = [DEMO_TYPO] + ([checkpoint] if name == 'test' else [])
    line = _stop_line(name, argv, monkeypatch)
    assert line == (f'error: config {DEMO_TYPO}: no such file; did you '
                    f'mean {DEMO}?')
    assert capsys.readouterr().err == ''


def test_config_typo_infer_volume(tmp_path, checkpoint, capsys, in_repo):
    scan = tmp_path / 'scan.nii.gz'
    scan.write_bytes(b'not read')
    code = _tool('infer_volume').main(
        [DEMO_TYPO, checkpoint, str(scan), '--out-dir', str(tmp_path / 'o')])
    assert code == 1
    assert capsys.readouterr().err.splitlines() == [
        f'error: config {DEMO_TYPO}: no such file; did you mean {DEMO}?']


def test_config_typo_in_its_own_folder(tmp_path, capsys, monkeypatch):
    """A config outside configs/: the closest of its folder; no close name
    at all: what to give."""
    (tmp_path / 'my_lesion_config.py').write_text('x = 1\n')
    typo = tmp_path / 'my_lesion_cofnig.py'
    line = _stop_line('train', [str(typo)], monkeypatch)
    assert line == (f'error: config {typo}: no such file; did you mean '
                    f'{tmp_path / "my_lesion_config.py"}?')
    line = _stop_line('train', [str(tmp_path / 'q.py')], monkeypatch)
    assert line.startswith(f'error: config {tmp_path / "q.py"}: no such '
                           'file; give a config file (.py), e.g. one under ')


def test_test_tool_missing_checkpoint(checkpoint, capsys, monkeypatch,
                                      in_repo):
    """Refused before any model is built, naming the closest .pth of its
    folder, else what to give."""
    folder = checkpoint.rsplit('/', 1)[0]
    line = _stop_line('test', [DEMO, f'{folder}/epoch_21.pth'], monkeypatch)
    assert line == (f'error: checkpoint {folder}/epoch_21.pth: no such file; '
                    f'did you mean {checkpoint}?')
    line = _stop_line('test', [DEMO, f'{folder}/none/latest.pth'],
                      monkeypatch)
    assert line.startswith(f'error: checkpoint {folder}/none/latest.pth: no '
                           'such file; give a .pth file that tools/train.py '
                           'wrote')
    assert capsys.readouterr().err == ''


def test_infer_volume_empty_folder(tmp_path, checkpoint, capfd, in_repo):
    """One line, without GDCM's three warning lines before it (written by
    ITK's C++ code: captured at the file descriptor); ITK's warnings are
    shown again afterwards."""
    empty = tmp_path / 'series'
    empty.mkdir()
    code = _tool('infer_volume').main(
        [DEMO, checkpoint, str(empty), '--out-dir', str(tmp_path / 'o')])
    assert code == 1
    assert capfd.readouterr().err.splitlines() == [
        f'error: {empty}: no DICOM series in this folder (it is empty); '
        'give a folder of DICOM files, a NIfTI or a .mhd file']
    assert sitk.ProcessObject_GetGlobalWarningDisplay()


def test_infer_volume_folder_of_nifti_files_shows_the_batch_command(
        tmp_path, checkpoint, capfd, in_repo):
    """A folder of NIfTI files is not a DICOM series: the one line shows
    the batch command that reads each file as a scan."""
    folder = tmp_path / 'scans'
    folder.mkdir()
    for name in ('b.nii.gz', 'a.nii.gz', 'notes.txt'):
        (folder / name).write_bytes(b'')
    code = _tool('infer_volume').main(
        [DEMO, checkpoint, str(folder), '--out-dir', str(tmp_path / 'o')])
    assert code == 1
    assert capfd.readouterr().err.splitlines() == [
        f'error: {folder}: no DICOM series in this folder: it holds 2 scan '
        f'file(s) (e.g. a.nii.gz); run them as a batch: ls {folder}/*.nii.gz '
        '> scans.txt && python tools/infer_volume.py CONFIG CHECKPOINT '
        '--scan-list scans.txt --out-dir OUT']
