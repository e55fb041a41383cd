# Copyright (c) mmlesion contributors. All rights reserved.
"""A mistake in a config's ``_base_`` chain is one line naming the file
that names the wrong base (mmengine's ``Config.fromfile`` raises from deep
inside its parser), in :func:`load_config` and in the tools."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from mmlesion.testing import repo_root
from mmlesion.utils.configs.loading import ConfigFileError, load_config

DEMO = 'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'


def _error(path: Path) -> str:
    with pytest.raises(ConfigFileError) as err:
        load_config(str(path))
    line = str(err.value)
    assert '\n' not in line
    return line


def _config(folder: Path, name: str, base: str) -> Path:
    path = folder / name
    path.write_text(f'_base_ = [{base!r}]\nx = 1\n')
    return path


def test_missing_base_names_the_file_that_names_it(tmp_path):
    """Two levels down, a misspelled folder and file: the nearest config
    in the form written."""
    (tmp_path / 'bases').mkdir()
    (tmp_path / 'bases' / 'runtime.py').write_text('a = 1\n')
    middle = _config(tmp_path, 'middle.py', './basse/runtim.py')
    top = _config(tmp_path, 'top.py', './middle.py')
    assert _error(top) == (
        f"{middle}: _base_ './basse/runtim.py': no such file "
        f"({tmp_path / 'basse' / 'runtim.py'}); did you mean "
        "'./bases/runtime.py'?")


def test_base_that_is_not_a_config(tmp_path):
    (tmp_path / 'notes.txt').write_text('a = 1\n')
    (tmp_path / 'broken.py').write_text('a = dict(\n')
    top = _config(tmp_path, 'top.py', './notes.txt')
    assert _error(top) == (
        f"{top}: _base_ './notes.txt' ({tmp_path / 'notes.txt'}): _base_ "
        'must name a config (.py), not a .txt file')
    top = _config(tmp_path, 'top.py', 'broken.py')
    assert _error(top) == (
        f"{top}: _base_ 'broken.py' ({tmp_path / 'broken.py'}) is not "
        "Python: line 1: '(' was never closed")


def test_json_base_is_refused_before_it_is_merged(tmp_path, monkeypatch):
    """mmengine merges a JSON ``_base_`` (a converter's ``volumes.json``)
    into the config silently, its fields becoming top-level keys: refused
    in one line, naming the file, before mmengine reads anything."""
    data = tmp_path / 'data'
    data.mkdir()
    (data / 'volumes.json').write_text('{"volumes": [], "spacing": 1.0}')
    middle = _config(tmp_path, 'middle.py', './data/volumes.json')
    top = _config(tmp_path, 'top.py', './middle.py')
    from mmengine.config import Config
    monkeypatch.setattr(Config, 'fromfile', lambda *a, **k: pytest.fail(
        'mmengine read the files'))
    assert _error(top) == (
        f"{middle}: _base_ './data/volumes.json' "
        f"({data / 'volumes.json'}): _base_ must name a config (.py), not a "
        '.json file')


def test_circular_bases_are_found_before_mmengine_reads_them(
        tmp_path, monkeypatch):
    """A circle is named at once: mmengine's parser, which would nest a
    thousand parses (seconds) before failing, is not called; the line names
    every file of the circle, from the file that closes it."""
    from mmengine.config import Config

    def never(*args, **kwargs):
        raise AssertionError('mmengine read a circular chain')

    monkeypatch.setattr(Config, 'fromfile', never)
    first = _config(tmp_path, 'first.py', './second.py')
    second = _config(tmp_path, 'second.py', './first.py')
    assert _error(first) == (
        f"{second}: _base_ './first.py': circular _base_ chain "
        '(first.py -> second.py -> first.py)')
    (tmp_path / 'sub').mkdir()
    third = _config(tmp_path / 'sub', 'third.py', '../middle.py')
    _config(tmp_path, 'middle.py', './sub/third.py')
    top = _config(tmp_path, 'top.py', './middle.py')
    assert _error(top) == (
        f"{third}: _base_ '../middle.py': circular _base_ chain "
        '(top.py -> middle.py -> third.py -> middle.py)')


def test_bases_without_a_circle_are_read_by_mmengine(tmp_path):
    """Two bases sharing one (no circle), a missing base: mmengine reads
    them (and the missing one is said after it fails)."""
    _config(tmp_path, 'common.py', './none.py').write_text('a = 1\n')
    _config(tmp_path, 'left.py', './common.py')
    _config(tmp_path, 'right.py', './common.py')
    top = tmp_path / 'top.py'
    top.write_text("_base_ = ['./left.py', './right.py']\n")
    with pytest.raises(Exception, match='Duplicate key'):
        load_config(str(top))
    top.write_text("_base_ = ['./left.py', './gone.py']\n")
    assert _error(top).startswith(f"{top}: _base_ './gone.py': no such ")


def test_scoped_bases(tmp_path):
    """A mmlesion:: or mmdet:: base that does not exist, an unknown
    package."""
    import mmlesion  # noqa: F401  (the mmlesion:: scope)
    typo = DEMO.replace('-demo', '-dmeo')
    top = _config(tmp_path, 'top.py', f'mmlesion::{typo}')
    assert _error(top).startswith(f"{top}: _base_ 'mmlesion::{typo}': no "
                                  'such file (')
    assert _error(top).endswith(f"; did you mean 'mmlesion::{DEMO}'?")
    top = _config(tmp_path, 'top.py', 'mmdet::_base_/models/faster-rcnn.py')
    assert _error(top).endswith(
        "did you mean 'mmdet::_base_/models/faster-rcnn_r50_fpn.py'?")
    top = _config(tmp_path, 'top.py', 'mmdett::_base_/schedules/x.py')
    assert _error(top) == (
        f"{top}: _base_ 'mmdett::_base_/schedules/x.py': no package "
        "'mmdett' has configs for mmengine; did you mean mmdet::?")


def test_other_errors_name_the_file(tmp_path):
    """A mistake after the chain: mmengine's error, after the file."""
    _config(tmp_path, 'base.py', './none.py').write_text('a = 1\n')
    top = tmp_path / 'top.py'
    top.write_text("_base_ = './base.py'\nb = {{_base_.nokey}}\n")
    assert _error(top) == f"{top}: KeyError: 'nokey'"
    assert load_config(str(tmp_path / 'base.py')).a == 1


def test_train_tool_prints_one_line(tmp_path, tools_forked):
    """The real ``tools/train.py``: exit status 1, one line, no
    traceback."""
    top = _config(tmp_path, 'mine.py', f'{repo_root()}/configs/demo/x.py')
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', str(top), '--work-dir',
         str(tmp_path / 'w')], cwd=repo_root(), capture_output=True,
        text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"error: {top}: _base_ '{repo_root()}/configs/demo/x.py': no such "
        f'file ({repo_root()}/configs/demo/x.py)']


@pytest.mark.parametrize('tool', ['test', 'infer_volume'])
def test_test_and_infer_volume_say_it_in_one_line(tool, tmp_path, capsys,
                                                  monkeypatch):
    top = _config(tmp_path, 'mine.py', './nowhere.py')
    ckpt = tmp_path / 'epoch_1.pth'
    ckpt.write_bytes(b'not read')
    argv = [str(top), str(ckpt)] + (
        [str(ckpt), '--out-dir', str(tmp_path / 'o')]
        if tool == 'infer_volume' else ['--work-dir', str(tmp_path / 'w')])
    spec = importlib.util.spec_from_file_location(
        f'mmlesion_{tool}_tool_loading', repo_root() / 'tools' / f'{tool}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, 'argv', [f'tools/{tool}.py', *argv])
    expected = (f"error: {top}: _base_ './nowhere.py': no such file "
                f"({tmp_path / 'nowhere.py'})")
    if tool == 'infer_volume':
        assert module.main(argv) == 1
        assert capsys.readouterr().err.splitlines() == [expected]
        return
    with pytest.raises(SystemExit) as stop:
        module.main()
    assert stop.value.code == expected


def test_fpr_config_of_infer_volume(tmp_path):
    """``--fpr-config`` is read by ``load_fpr_model``: the same line."""
    from mmlesion.methods.lens.fpr_rescore import load_fpr_model
    top = _config(tmp_path, 'fpr.py', './fpr_bas.py')
    (tmp_path / 'fpr_base.py').write_text('a = 1\n')
    with pytest.raises(ConfigFileError, match=r"fpr.py: _base_ './fpr_bas.py"
                       r"': no such file .*did you mean './fpr_base.py'\?"):
        load_fpr_model(str(top), None)
