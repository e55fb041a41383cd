# Copyright (c) mmlesion contributors. All rights reserved.
"""tools/search_alb.py: command-line checks, and a one-iteration search with
the demo search config on a tiny generated DeepLesion-layout dataset."""
import importlib.util
import os
import os.path as osp
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope

import mmlesion  # noqa: F401  (registers)
from mmlesion.apps.demo import generate_demo_deeplesion
from mmlesion.methods.elixirnet.nas import load_genotypes
from mmlesion.methods.elixirnet.nas.genotype import check_genotypes
from mmlesion.testing import get_config, repo_root

# `python tools/...` runs fork a process that imported mmdet once
# (conftest, tools_forked).
pytestmark = pytest.mark.usefixtures('tools_forked')

TOOL = Path(__file__).resolve().parents[2] / 'tools' / 'search_alb.py'
DEMO = ('elixirnet/demo/'
        'elixirnet-alb-search_r18-tiny_fpn_deeplesion-demo.py')
DEMO_DARTS = ('elixirnet/demo/'
              'elixirnet-alb-search-dartsspace_r18-tiny_fpn_deeplesion-demo.py')
DEMO_RANDOM = ('elixirnet/demo/'
               'elixirnet-alb-search-random_r18-tiny_fpn_deeplesion-demo.py')
BASELINE = 'elixirnet/demo/faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo.py'


def load_tool():
    spec = importlib.util.spec_from_file_location('search_alb', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config_path(rel: str) -> str:
    return str(repo_root() / 'configs' / rel)


def test_build_cfg_checks(tmp_path):
    tool = load_tool()
    with pytest.raises(ValueError, match='ALBSearchLoop'):
        tool.build_cfg(tool.parse_args([_config_path(BASELINE)]))
    with pytest.raises(FileNotFoundError, match='Baseline checkpoint'):
        tool.build_cfg(
            tool.parse_args([
                _config_path(DEMO), '--load-from',
                str(tmp_path / 'missing.pth')
            ]))
    with pytest.raises(ValueError, match='--load-from'):
        tool.build_cfg(
            tool.parse_args([
                _config_path(DEMO),
                '--cfg-options',
                'load_from=',
            ]))
    ckpt = tmp_path / 'base.pth'
    ckpt.write_bytes(b'')
    cfg = tool.build_cfg(
        tool.parse_args([
            _config_path(DEMO), '--load-from',
            str(ckpt), '--work-dir',
            str(tmp_path / 'w'), '--amp', '--cfg-options',
            'train_cfg.max_epochs=2'
        ]))
    assert cfg.load_from == str(ckpt) and cfg.work_dir == str(tmp_path / 'w')
    assert cfg.train_cfg.max_epochs == 2
    assert cfg.optim_wrapper.weight.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.arch.type == 'AmpOptimWrapper'


def test_demo_search_writes_a_config_that_trains(tmp_path, tiny_demo_root):
    """Baseline checkpoint -> one search iteration -> genotype snippet and a
    ready config inheriting the demo ElixirNet -> tools/train.py trains that
    file; a second search refuses to replace the outputs."""
    data_root = tmp_path / 'demo'
    generate_demo_deeplesion(data_root,
                             num_train=4,
                             num_val=0,
                             num_test=0,
                             image_size=96)
    init_default_scope('mmdet')
    torch.manual_seed(0)  # the baseline's weights, whatever ran before
    baseline = MODELS.build(get_config(BASELINE).model)
    ckpt = str(tmp_path / 'baseline.pth')
    torch.save(dict(state_dict=baseline.state_dict(), meta=dict()), ckpt)

    tool = load_tool()
    work_dir = tmp_path / 'work'
    argv = [
        _config_path(DEMO), '--work-dir',
        str(work_dir), '--load-from', ckpt, '--cfg-options',
        f'train_dataloader.dataset.data_root={data_root}/',
        # a fixed seed: without one the runner draws it from numpy's global
        # state (whatever ran before). One iteration leaves the architecture
        # weights near their initial values, so the genotype is the seed's:
        # seeds 0, 3 and 4 end without a non_local op, which the RTM target
        # refuses (test_genotype_without_non_local_is_refused_...), 1 and 2
        # with one
        'randomness.seed=1',
        'train_cfg.max_epochs=1', 'train_dataloader.batch_size=1',
        'model.train_cfg.rcnn.sampler.num=16',
        'model.train_cfg.rpn_proposal.max_per_img=16',
        'train_dataloader.dataset.pipeline.3.scale=(64,64)'
    ]
    path = tool.main(argv)
    assert path == osp.join(
        str(work_dir), 'elixirnet-searched_r18-tiny_fpn_1x_deeplesion-demo.py')
    genotypes = load_genotypes(str(work_dir / 'genotype.py'))
    assert set(genotypes) == {'normal', 'reduce'}
    assert osp.isfile(work_dir / 'genotypes' / 'epoch_1.py')
    assert osp.isfile(work_dir / 'epoch_1.pth')

    ready = Config.fromfile(path)
    head = ready.model.roi_head.bbox_head
    assert check_genotypes(head.genotypes) == genotypes and not head.search
    target = get_config(
        'elixirnet/demo/elixirnet_r18-tiny_fpn_1x_deeplesion-demo.py')
    assert head.type == target.model.roi_head.bbox_head.type
    assert ready.model.rpn_head == target.model.rpn_head
    text = Path(path).read_text()
    assert 'baseline checkpoint' in text and ckpt in text
    assert 'search config' in text

    with pytest.raises(FileExistsError, match='--overwrite'):
        tool.main(argv)

    # tools/train.py trains the written file as it is.
    root = str(tiny_demo_root) + os.sep
    proc = subprocess.run(
        [
            sys.executable, str(repo_root() / 'tools' / 'train.py'), path,
            '--work-dir',
            str(tmp_path / 'train'), '--cfg-options',
            f'train_dataloader.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}',
            'train_dataloader.dataset.indices=2', 'train_cfg.max_epochs=1',
            'train_cfg.val_interval=2', 'default_hooks.logger.interval=1',
            'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False'
        ],
        cwd=str(repo_root()),
        env=dict(os.environ,
                 PYTHONPATH=str(repo_root()) + os.pathsep +
                 os.environ.get('PYTHONPATH', '')),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert osp.isfile(tmp_path / 'train' / 'epoch_1.pth')


def _demo_args(tool, tmp_path, *extra: str):
    """The tool's arguments for the demo search with an empty baseline."""
    ckpt = tmp_path / 'base.pth'
    ckpt.write_bytes(b'')
    return tool.parse_args([
        _config_path(DEMO), '--load-from',
        str(ckpt), '--work-dir',
        str(tmp_path / 'w'), *extra
    ])


def test_target_config_checks(tmp_path):
    tool = load_tool()
    args = _demo_args(tool, tmp_path, '--target-config',
                      str(tmp_path / 'missing.py'))
    with pytest.raises(FileNotFoundError, match='missing.py'):
        tool.output_paths(args, tool.build_cfg(args))
    args = _demo_args(tool, tmp_path, '--out-config',
                      str(tmp_path / 'mine.py'))
    (tmp_path / 'mine.py').write_text('# a user file\n')
    with pytest.raises(FileExistsError, match='mine.py'):
        tool.output_paths(args, tool.build_cfg(args))
    args.overwrite = True
    paths = tool.output_paths(args, tool.build_cfg(args))
    assert paths['target'].endswith(
        'elixirnet_r18-tiny_fpn_1x_deeplesion-demo.py')
    assert (tmp_path / 'mine.py').read_text() == '# a user file\n'


# ----------------------------------------------------------------------
# One command for the searched path: search, write, train (--train)
TINY_SEARCH = [
    'train_cfg.max_epochs=1', 'train_dataloader.batch_size=1',
    'model.train_cfg.rcnn.sampler.num=16',
    'model.train_cfg.rpn_proposal.max_per_img=16',
    'train_dataloader.dataset.pipeline.3.scale=(64,64)', 'randomness.seed=0'
]


def _tiny_data_and_baseline(tmp_path, num_train=4):
    data_root = tmp_path / 'demo'
    generate_demo_deeplesion(data_root,
                             num_train=num_train,
                             num_val=1,
                             num_test=1,
                             image_size=96)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    baseline = MODELS.build(get_config(BASELINE).model)
    ckpt = str(tmp_path / 'baseline.pth')
    torch.save(dict(state_dict=baseline.state_dict(), meta=dict()), ckpt)
    return f'{data_root}/', ckpt


def _tiny_train_options(root):
    return [
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        'train_dataloader.dataset.indices=1', 'train_dataloader.batch_size=1',
        'train_dataloader.dataset.pipeline.3.scale=(64,64)',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=2',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False'
    ]


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def single_process_group(monkeypatch):
    """``--launcher pytorch`` with one process (world size 1) in this
    process; counts the process groups made and closes a leftover one."""
    import torch.distributed as torch_dist
    for key, value in dict(RANK='0', WORLD_SIZE='1', LOCAL_RANK='0',
                           LOCAL_WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                           MASTER_PORT=str(_free_port())).items():
        monkeypatch.setenv(key, value)
    inits = []
    original = torch_dist.init_process_group

    def counting_init(*args, **kwargs):
        inits.append(kwargs.get('backend', args[0] if args else None))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch_dist, 'init_process_group', counting_init)
    # each Runner.train records the process group it runs in
    from mmengine.runner import Runner
    groups = []
    train = Runner.train

    def recording_train(self):
        groups.append((type(self.train_loop).__name__ if not isinstance(
            self._train_loop, dict) else self._train_loop.get('type'),
                       torch_dist.is_initialized()
                       and id(torch_dist.group.WORLD)))
        return train(self)

    monkeypatch.setattr(Runner, 'train', recording_train)
    yield dict(inits=inits, groups=groups)
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def test_search_then_train_in_one_command(tmp_path, capsys,
                                          single_process_group):
    """--train: the search writes the ready config, then this process
    trains it with the same launcher, in the search's process group (one
    init_process_group for both Runners); a rerun skips the search."""
    root, ckpt = _tiny_data_and_baseline(tmp_path, num_train=2)
    tool = load_tool()
    work = tmp_path / 'work_dirs'
    argv = [
        _config_path(DEMO), '--work-dir',
        str(work / 'search'), '--load-from', ckpt, '--launcher', 'pytorch',
        '--train', '--target-config',
        _config_path('elixirnet/demo/'
                     'elixirnet-alb_r18-tiny_fpn_1x_deeplesion-demo.py'),
        '--cfg-options', f'train_dataloader.dataset.data_root={root}',
        *TINY_SEARCH, '--train-cfg-options', *_tiny_train_options(root)
    ]
    path = tool.main(argv)
    # (the "+ALB" target: a 1-step genotype may lack the non_local op that
    # the default target's RTM needs)
    name = 'elixirnet-alb-searched_r18-tiny_fpn_1x_deeplesion-demo'
    assert path == str(work / 'search' / f'{name}.py')
    train_dir = work / name  # next to the search's work dir
    assert (train_dir / 'epoch_1.pth').is_file()
    groups = single_process_group['groups']
    assert [g[0] for g in groups] == ['ALBSearchLoop', 'EpochBasedTrainLoop']
    assert groups[0][1] and groups[0][1] == groups[1][1]  # the same group
    assert len(single_process_group['inits']) == 1
    out = capsys.readouterr().out
    assert (f'tools/train.py {path} --work-dir {train_dir} --launcher '
            'pytorch --cfg-options') in out
    assert 'torch.distributed.run --nproc_per_node=1' in out

    # the same command again: the ready config exists -> no new search
    genotype = work / 'search' / 'genotype.py'
    stamp = genotype.stat().st_mtime_ns
    single_process_group['groups'].clear()
    assert tool.main(argv) == path
    out = capsys.readouterr().out
    assert 'skipping the search' in out and '--resume' in out
    assert genotype.stat().st_mtime_ns == stamp
    assert [g[0] for g in single_process_group['groups']] == [
        'EpochBasedTrainLoop'
    ]


def test_train_paths_and_command(tmp_path):
    """--train's work dir sits next to the search's; the printed command is
    what tools/train.py takes."""
    tool = load_tool()
    ckpt = tmp_path / 'base.pth'
    ckpt.write_bytes(b'')
    args = tool.parse_args([
        _config_path(DEMO), '--load-from',
        str(ckpt), '--work-dir',
        str(tmp_path / 'w' / 'search'), '--train', '--train-cfg-options',
        'train_cfg.max_epochs=1'
    ])
    paths = tool.output_paths(args, tool.build_cfg(args))
    assert not paths['skip_search']
    assert paths['train_work_dir'] == str(
        tmp_path / 'w' / 'elixirnet-searched_r18-tiny_fpn_1x_deeplesion-demo')
    argv = tool.train_argv(args, paths, resume=True)
    assert argv == [
        paths['config'], '--work-dir', paths['train_work_dir'], '--launcher',
        'none', '--resume', '--cfg-options', 'train_cfg.max_epochs=1'
    ]
    assert tool.train_command(args, argv).startswith('python tools/train.py ')
    # a ready config in place: --train skips the search, without --train
    # the search still refuses to replace it
    Path(paths['config']).parent.mkdir(parents=True)
    Path(paths['config']).write_text('# ready\n')
    assert tool.output_paths(args, tool.build_cfg(args))['skip_search']
    args.train = False
    with pytest.raises(FileExistsError, match='--overwrite'):
        tool.output_paths(args, tool.build_cfg(args))


# ----------------------------------------------------------------------
# Table 6: DARTS' search space and the random strategy, on the demo
def test_table6_demo_configs_differ_only_where_they_should():
    base = get_config(DEMO)
    darts = get_config(DEMO_DARTS)
    rand = get_config(DEMO_RANDOM)
    from mmlesion.methods.elixirnet.models.alb_ops import DARTS_OP_NAMES
    assert tuple(darts.model.roi_head.bbox_head.op_names) == DARTS_OP_NAMES
    assert 'op_names' not in base.model.roi_head.bbox_head
    assert rand.train_cfg.strategy == 'random'
    for cfg in (darts, rand):
        # the "+ALB" target (no RTM: DARTS' space has no non_local)
        assert cfg.searched_config_base == \
            'elixirnet-alb_r18-tiny_fpn_1x_deeplesion-demo.py'
        # the search itself splits the TRAIN split, as the paper's
        assert cfg.train_dataloader.dataset.split == 'train'
        assert cfg.train_dataloader == base.train_dataloader
        assert cfg.optim_wrapper == base.optim_wrapper
        assert cfg.load_from == base.load_from
    assert darts.train_cfg == base.train_cfg
    assert {k: v for k, v in rand.train_cfg.items()
            if k not in ('strategy', 'num_candidates', 'candidate_batches',
                         'num_finalists', 'finalist_batches')} == \
        dict(base.train_cfg)
    assert rand.model == base.model
    for name in ('alb_search/elixirnet-alb-search-dartsspace_r50_fpn_4xb4-'
                 '15e_deeplesion-3slice.py',
                 'alb_search/elixirnet-alb-search-random_r50_fpn_4xb4-'
                 '15e_deeplesion-3slice.py'):
        full = get_config(f'elixirnet/{name}')
        assert full.train_dataloader.dataset.split == 'train'
        assert full.train_cfg.max_epochs == 15
        assert full.searched_config_base == \
            '../elixirnet-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py'
    full_random = get_config('elixirnet/alb_search/elixirnet-alb-search-'
                             'random_r50_fpn_4xb4-15e_deeplesion-3slice.py')
    assert (full_random.train_cfg.num_candidates,
            full_random.train_cfg.candidate_batches,
            full_random.train_cfg.num_finalists,
            full_random.train_cfg.finalist_batches) == (1000, 10, 10, None)


@pytest.mark.parametrize('config,tag', [(DEMO_DARTS, 'dartsspace'),
                                        (DEMO_RANDOM, 'random')])
def test_table6_demo_search_writes_a_ready_config(tmp_path, config, tag):
    """The DARTS-space and random searches run on the demo config, write
    ready configs of their own names, and those configs build."""
    root, ckpt = _tiny_data_and_baseline(tmp_path)
    tool = load_tool()
    work = tmp_path / 'search'
    extra = ['train_cfg.num_candidates=2', 'train_cfg.candidate_batches=1',
             'train_cfg.num_finalists=1'] if tag == 'random' else []
    path = tool.main([
        _config_path(config), '--work-dir',
        str(work), '--load-from', ckpt, '--cfg-options',
        f'train_dataloader.dataset.data_root={root}', *TINY_SEARCH, *extra
    ])
    assert osp.basename(path) == (
        f'elixirnet-alb-searched-{tag}_r18-tiny_fpn_1x_deeplesion-demo.py')
    ready = Config.fromfile(path)
    head = ready.model.roi_head.bbox_head
    from mmlesion.methods.elixirnet.models.alb_ops import ALB_OP_NAMES, DARTS_OP_NAMES
    op_names = DARTS_OP_NAMES if tag == 'dartsspace' else ALB_OP_NAMES
    assert tuple(head.get('op_names', ALB_OP_NAMES)) == op_names
    assert check_genotypes(head.genotypes, op_names=op_names) == \
        load_genotypes(str(work / 'genotype.py'))
    assert (tag == 'random') == osp.isfile(work / 'random_search.json')
    text = Path(path).read_text()
    assert ('random search with weight sharing' in text) == (tag == 'random')
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(ready.model)
    assert tuple(model.roi_head.bbox_head.op_names) == op_names


def test_genotype_without_non_local_is_refused_for_the_rtm_target(tmp_path):
    """A search that ends without a non_local op (which RTM's relation graph
    needs) does not leave a ready config that fails in training: the tool
    names the file, the reason and the way out."""
    from types import SimpleNamespace

    from mmlesion.methods.elixirnet.models.alb_bbox_head import \
        DEFAULT_ALB_GENOTYPES
    from mmlesion.methods.elixirnet.nas import format_genotypes
    tool = load_tool()
    args = _demo_args(tool, tmp_path)
    args.argv = []
    cfg = tool.build_cfg(args)
    paths = tool.output_paths(args, cfg)
    genotypes = {k: dict(v) for k, v in DEFAULT_ALB_GENOTYPES.items()}
    genotypes['normal']['ops'] = [('sep_conv_3x3', i) if op == 'non_local'
                                  else (op, i)
                                  for op, i in genotypes['normal']['ops']]
    os.makedirs(osp.dirname(paths['genotype']), exist_ok=True)
    Path(paths['genotype']).write_text(format_genotypes(genotypes))
    runner = SimpleNamespace(iter=1, logger=None)
    with pytest.raises(ValueError) as err:
        tool.write_ready_config(args, cfg, paths, runner)
    message = str(err.value)
    assert paths['config'] in message and paths['genotype'] in message
    assert 'non_local' in message and '--target-config' in message
