# Copyright (c) mmlesion contributors. All rights reserved.
"""What the tools say at their end, and what they leave behind.

* ``tools/run_demo.py``: the config it saves tests the test split (the run
  itself evaluates val), and its summary names the split of each number;
* ``tools/train.py``'s end-of-run summary
  (:mod:`mmlesion.utils.reporting.summary`): the work dir, the last and
  best checkpoints, the ``<timestamp>/`` log folder and the config copy;
* ``tools/reproduce.py --dry-run``: commands with the paths inside the
  repository relative to it, one line per input that is not there.

No test here trains: the demo's runner is built and its final evaluation
run on the untrained model (4 val slices of ``tiny_demo_root``).
"""
import os
import re
import shlex
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from mmengine.config import Config

from mmlesion.testing import repo_root
from tests.helpers.tool_modules import load_tool

#: the val and test key slices of ``tiny_demo_root`` (tests/conftest.py)
TINY_VAL, TINY_TEST = 4, 2


@pytest.fixture(scope='module')
def demo():
    return load_tool('run_demo.py')


def _demo_args(demo, data_root: Path, work_dir: Path):
    return demo.parse_args([
        '--data-root', str(data_root), '--work-dir', str(work_dir),
        '--cfg-options', 'default_hooks.logger.interval=1'
    ])


def test_demo_config_tests_the_test_split(demo, tmp_path):
    """The config the main job runs (and saves) validates on val and tests
    on test, both at ``--data-root``."""
    cfg = demo.build_cfg(_demo_args(demo, tmp_path / 'data', tmp_path / 'w'))
    assert cfg.val_dataloader.dataset.split == 'val'
    assert cfg.test_dataloader.dataset.split == 'test'
    root = str(tmp_path / 'data') + os.sep
    assert cfg.test_dataloader.dataset.data_root == root
    assert cfg.val_dataloader.dataset.data_root == root


def test_demo_saved_config_tests_test_while_the_run_reads_val(
        demo, tiny_demo_root, tmp_path):
    """The copy in the run's folder tests the test split; the run's own
    final evaluation (here of the untrained model) reads the val split."""
    runner = demo.build_runner(
        demo.build_cfg(_demo_args(demo, tiny_demo_root, tmp_path)))
    (saved, ) = Path(runner.log_dir).glob('*.py')
    saved = Config.fromfile(str(saved))
    assert saved.test_dataloader.dataset.split == 'test'
    assert saved.val_dataloader.dataset.split == 'val'
    metrics = runner.test_val_split()
    assert 'froc/sens@4' in metrics
    assert len(runner.test_loop.dataloader.dataset) == TINY_VAL
    assert runner.cfg.test_dataloader.dataset.split == 'test'


def test_demo_summary_names_the_split_of_each_number(demo, tmp_path):
    best = tmp_path / 'best_froc_sens@4_epoch_3.pth'
    config = tmp_path / 'faster-rcnn_r18_fpn_36e_deeplesion-demo.py'
    for path in (best, config):
        path.write_text('')
    metrics = {f'froc/sens@{r}': .5 for r in demo.HEADLINE_RATES}
    metrics.update({'froc/mean@0.5-4': .5, 'froc/bbox_mAP': .2})
    summary = dict(
        metrics=metrics, split='val', epoch=36,
        best=[dict(path=str(best), metric='froc/sens@4', score=.6, epoch=3)],
        train_and_eval_seconds=1., run_dir=str(tmp_path), seed=2,
        torch_threads=1, omp_num_threads='1', omp_wait_policy=None,
        threads_chosen_by='user')
    text = demo.summary_text(summary, [('best checkpoint', best),
                                       ('config', config)])
    # the seed and thread count the README's numbers are tied to
    assert ('Made with seed 2 and 1 torch thread (OMP_NUM_THREADS=1, set by '
            'you); OMP_NUM_THREADS=1 and --seed 2 give these numbers '
            'again') in text
    summary.update(torch_threads=2, omp_num_threads=None,
                   threads_chosen_by='torch')
    assert ("seed 2 and 2 torch threads (torch's default); "
            'OMP_NUM_THREADS=2 and --seed 2') in demo.summary_text(summary, [])
    assert 'FROC on the val split, epoch 36 (sensitivity' in text
    assert 'COCO bbox on the val split: mAP 0.200' in text
    assert f'{best}  (val froc/sens@4 0.600, epoch 3)' in text
    # where the test split's numbers come from
    assert 'The test split is not evaluated here: tools/test.py' in text


# ------------------------------------------------------------ tools/train.py
def _fake_trained_runner(tmp_path: Path, hooks: list) -> SimpleNamespace:
    """What a runner holds after ``train()``: the files mmengine writes."""
    from mmengine.logging import MessageHub
    stamp = '20260101_120000'
    work, log_dir = tmp_path / 'work', tmp_path / 'work' / stamp
    (log_dir / 'vis_data').mkdir(parents=True)
    (log_dir / f'{stamp}.log').write_text('')
    for name in ('epoch_2.pth', 'best_froc_sens@4_epoch_1.pth', 'demo.py'):
        (work / name).write_text('')
    (work / 'last_checkpoint').write_text(str(work / 'epoch_2.pth'))
    hub = MessageHub.get_instance(f'summary_{tmp_path.name}')
    hub.update_info('best_ckpt', str(work / 'best_froc_sens@4_epoch_1.pth'))
    hub.update_info('best_score', .25)
    return SimpleNamespace(
        work_dir=str(work), log_dir=str(log_dir), timestamp=stamp,
        cfg=SimpleNamespace(filename='/somewhere/configs/demo.py'),
        hooks=hooks, message_hub=hub)


def test_training_summary_says_where_everything_went(tmp_path):
    from mmengine.hooks import CheckpointHook

    from mmlesion.utils.reporting.summary import runner_training_summary
    runner = _fake_trained_runner(
        tmp_path, [CheckpointHook(save_best='froc/sens@4', rule='greater')])
    work, log_dir = Path(runner.work_dir), Path(runner.log_dir)
    text = runner_training_summary(runner)
    lines = text.strip().splitlines()
    assert len(lines) <= 12, text
    assert 'work dir' in lines[1] and '<timestamp>/ folder' in lines[1]

    def row(what: str) -> str:
        (line, ) = [x for x in lines
                    if re.match(rf'\s*{re.escape(what)}\s{{2,}}\S', x)]
        return line

    assert row('work dir').endswith(f'{work}{os.sep}')
    assert row('last checkpoint').endswith(str(work / 'epoch_2.pth'))
    assert row('best checkpoint').endswith(
        f'{work / "best_froc_sens@4_epoch_1.pth"}  '
        '(val froc/sens@4 0.2500, epoch 1)')
    assert row('log folder').endswith(f'{log_dir}{os.sep}')
    assert row('log').endswith(str(log_dir / f'{runner.timestamp}.log'))
    assert row('scalars').endswith(str(log_dir / 'vis_data') + os.sep)
    assert row('config').endswith(str(work / 'demo.py'))


def test_training_summary_without_save_best(tmp_path):
    from mmengine.hooks import CheckpointHook

    from mmlesion.utils.reporting.summary import runner_training_summary
    text = runner_training_summary(
        _fake_trained_runner(tmp_path, [CheckpointHook(interval=1)]))
    assert 'best checkpoint' not in text and 'last checkpoint' in text


def test_train_tool_prints_the_summary_after_training(monkeypatch, tmp_path,
                                                      tiny_demo_root):
    """``tools/train.py`` prints the summary once ``runner.train()`` is
    done (the runner a stand-in: the training is what other tests run)."""
    from mmengine.runner import Runner
    train = load_tool('train.py')
    events = []

    class TrainedRunner:
        def __init__(self) -> None:
            self._hooks = []

        def register_hook(self, hook) -> None:
            self._hooks.append(hook)

        def train(self) -> None:
            events.append('train')

    runner = TrainedRunner()
    monkeypatch.setattr(Runner, 'from_cfg',
                        classmethod(lambda cls, cfg: runner))
    monkeypatch.setattr(train, 'print_training_summary',
                        lambda r: events.append(('summary', r)))
    monkeypatch.setattr(sys, 'argv', [
        'train.py', 'configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py',
        '--work-dir', str(tmp_path / 'work'), '--cfg-options',
        f'data_root={tiny_demo_root}{os.sep}'
    ])
    monkeypatch.chdir(repo_root())
    monkeypatch.setenv('LOCAL_RANK', '0')  # parse_args sets it otherwise
    train.main()
    assert events == ['train', ('summary', runner)]


# --------------------------------------------------- tools/reproduce.py plan
@pytest.fixture
def reproduce():
    return load_tool('reproduce.py')


def _plan(reproduce, capsys, *args: str) -> str:
    assert reproduce.main(['elixirnet/table5', '--rows', 'fpn', '--dry-run',
                           '--time-iters', '0', *args]) == 0
    return capsys.readouterr().out


def test_dry_run_names_each_missing_input(reproduce, tmp_path, capsys,
                                          monkeypatch, tiny_demo_root):
    """A data root that is not there: its annotation file on one line,
    with the stages that read it; with the data there, no such line."""
    monkeypatch.chdir(repo_root())
    nowhere = tmp_path / 'DeepLesion'
    out = _plan(reproduce, capsys, '--work-dir', str(tmp_path / 'w'),
                '--data-root', str(nowhere))
    missing = [line for line in out.splitlines()
               if line.startswith('missing: ')]
    assert missing == [f'missing: {nowhere / "DL_info.csv"} (read by train, '
                       'test_iou; 1 row(s)); get it: '
                       'data/README.md#deeplesion-real-data'], out
    assert out.splitlines()[-1].startswith('jobs: ')
    assert not (tmp_path / 'w').exists()
    out = _plan(reproduce, capsys, '--work-dir', str(tmp_path / 'w'),
                '--data-root', str(tiny_demo_root))
    assert 'missing' not in out
    # a work dir outside the repository stays absolute
    assert f'--work-dir {tmp_path / "w"}' in out


def test_dry_run_commands_are_relative_to_the_repository(
        reproduce, tmp_path, capsys, monkeypatch):
    root = str(repo_root())
    monkeypatch.chdir(root)
    work = f'work_dirs/_plan_only_{tmp_path.name}'
    out = _plan(reproduce, capsys, '--work-dir', work)
    assert not Path(root, work).exists()  # a plan writes nothing
    commands = [line.strip() for line in out.splitlines()
                if 'tools/' in line and not line.startswith('missing')]
    assert len(commands) == 2  # train, test
    for command in commands:
        assert root not in command, command
    train = shlex.split(commands[0])
    assert train[1:5] == [
        'tools/train.py', 'configs/elixirnet/faster-rcnn_r50_fpn_4xb2-1x_'
        'deeplesion-3slice.py', '--work-dir',
        f'{work}/faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice/seed_0']
    # the interpreter as it runs from the repository root
    python = sys.executable
    assert train[0] == (os.path.relpath(python, root) if python.startswith(
        root + os.sep) else python)
    assert f'"$(cat {work}/' in commands[1]  # @last:, read when run
    # the default data root is not in this checkout: named, relative
    if not Path(root, 'data/DeepLesion/DL_info.csv').exists():
        assert 'missing: data/DeepLesion/DL_info.csv (read by train, ' \
            'test_iou; 1 row(s)); get it: data/README.md#deeplesion-real-' \
            'data' in out


def test_run_checks_every_input_before_the_first_stage(reproduce, tmp_path,
                                                       capsys, monkeypatch):
    """Missing data: one error naming each missing input and where it
    comes from, before any stage has started (nothing written)."""
    monkeypatch.chdir(repo_root())
    nowhere = tmp_path / 'DeepLesion'
    work = tmp_path / 'w'
    assert reproduce.main(['elixirnet/table5', '--rows', 'fpn', '--work-dir',
                           str(work), '--data-root', str(nowhere)]) == 2
    out, err = capsys.readouterr()
    assert out == ''
    assert err.splitlines() == [
        'error: the plan cannot start, inputs are not there:',
        f'missing: {nowhere / "DL_info.csv"} (read by train, test_iou; '
        '1 row(s)); get it: data/README.md#deeplesion-real-data']
    assert not work.exists()


def test_readme_sections_named_exist():
    """Every data/README.md section the missing-input lines name is a
    heading there."""
    import re

    from mmlesion.datasets.data_layout import _README, readme_section
    text = (repo_root() / 'data' / 'README.md').read_text()
    anchors = {re.sub(r'[^a-z0-9 -]', '', h.lower()).replace(' ', '-')
               for h in re.findall(r'^#+ (.+)$', text, re.M)}
    for section in _README.values():
        assert section.split('#')[1] in anchors, section
    assert readme_section('data/LUNA16/luna16.json') == _README['volumes']
    assert readme_section('x/demo_deeplesion/DL_info.csv') == _README['demo']
