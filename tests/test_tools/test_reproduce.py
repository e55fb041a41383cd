# Copyright (c) mmlesion contributors. All rights reserved.
"""``tools/reproduce.py``: ``--dry-run`` of every table, ``--compare``
without results, replicas refused unless asked, the Slurm and
``--config-cfg-options`` options, and the RetinaNet anchor row end to end
at tiny size. (ElixirNet's Table 5 rows FPN and TRPN end to end, a resumed
run and ``--compare`` against the paper are in
``tests/test_apps/test_reproduce/test_e2e_elixirnet.py``, in the folder of
Tables 1, 2 and 4, whose FPN training and test Table 5's FPN row shares.)"""
import json

import pytest

from mmlesion.apps.reproduce.table_index import TABLE_INDEX
from tests.helpers.elixirnet_tiny import TINY
from tests.helpers.tool_modules import load_tool


@pytest.fixture(scope='module')
def tool():
    return load_tool('reproduce.py')


@pytest.mark.parametrize('table', sorted(TABLE_INDEX))
def test_dry_run_every_table(tool, table, tmp_path, capsys):
    # --time-iters 0: the shipped step times, also on a machine with a GPU
    assert tool.main([table, '--dry-run', '--time-iters', '0', '--work-dir',
                      str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert 'estimated total' in out and 'GPU-hours' in out
    for key in TABLE_INDEX[table].rows:
        assert f'  {key} (seed 0)' in out
    assert not list(tmp_path.iterdir())  # a plan writes nothing


def test_compare_without_results_is_an_error(tool, tmp_path, capsys):
    assert tool.main(['elixirnet/table5', '--compare', '--work-dir',
                      str(tmp_path)]) == 1
    assert 'no finished row' in capsys.readouterr().err


def test_a_replica_is_refused_unless_asked(tool, tmp_path, capsys):
    """A release replica (synthetic) passed as the real data is refused;
    --allow-replica rehearses on it."""
    from projects.replicas.marker import replica_marker_text
    from mmlesion.datasets.replica_marker import REPLICA_FILE
    root = tmp_path / 'DeepLesion'
    root.mkdir()
    (root / REPLICA_FILE).write_text(
        replica_marker_text('deeplesion', 'tiny', 0, 'DeepLesion release'))
    args = ['elixirnet/table5', '--rows', 'fpn', '--data-root', str(root),
            '--work-dir', str(tmp_path / 'w')]
    assert tool.main(args) == 2
    err = capsys.readouterr().err
    assert 'is a release replica' in err and '--allow-replica' in err
    assert not (tmp_path / 'w').exists()
    assert tool.main(args + ['--dry-run', '--time-iters', '0']) == 0


def test_slurm_options(tool, tmp_path, capsys):
    """--executor slurm needs a partition; --status lists the submitted
    jobs (none yet)."""
    args = ['elixirnet/table5', '--rows', 'fpn', '--work-dir', str(tmp_path)]
    assert tool.main(args + ['--executor', 'slurm']) == 2
    assert '--partition' in capsys.readouterr().err
    assert tool.main(args + ['--status']) == 0
    out = capsys.readouterr().out
    assert '| job | stage | rows | state |' in out


def test_retinanet_anchor_row_end_to_end(tool, tiny_demo_root, tmp_path,
                                         tools_forked):
    """Improved RetinaNet's Table 1, its first two rows at tiny size: the
    original anchors, then "+ anchor optimization", whose DE anchor search
    on the validation split (the paper's set) writes the row's config, which trains and tests
    (full-size VGG-19 configs, shrunk by appended options: VGG-11, the
    same stages and channels with fewer convolutions)."""
    work = tmp_path / 'rt'
    tiny = [o for o in TINY if not o.startswith(('model.backbone.depth',
                                                 'model.neck.in_channels'))
            ] + ['model.backbone.depth=11']
    assert tool.main(['retinanet_lesion/table1', '--rows', 'original',
                      'anchors',
                      '--work-dir', str(work), '--data-root',
                      f'{tiny_demo_root}/', '--cfg-options', *tiny]) == 0
    (anchors, ) = (work / 'anchors').glob('*-valanchors_*.py')
    text = anchors.read_text()
    assert '--split val' in text and 'anchor_generator' in text
    table = json.loads((work / 'table.json').read_text())
    rows = {r['key']: r for r in table['rows']}
    assert set(rows) == {'original', 'anchors'}
    row = rows['anchors']
    assert row['seeds'] == [0] and row['paper']['sens@4'] == 87.87
    for row in rows.values():
        assert 0 <= row['ours']['sens@4']['mean'] <= 100
    # only the optimised row searched anchors
    assert len(list((work / 'anchors').glob('*.py'))) == 1
    assert (work / 'froc.png').is_file()


def test_lens_refuses_a_replica_beside_real_deeplesion(tool, tmp_path,
                                                       capsys):
    """LENS reads four releases: a replica among them is refused by name,
    even when the ``--data-root`` folder itself is not one."""
    (tmp_path / 'DeepLesion').mkdir()
    assert load_tool('projects/replicas/tools/generate_release_replica.py').main(
        ['luna16', '--out', str(tmp_path / 'LUNA16'), '--size', 'tiny',
         '--quiet']) == 0
    args = ['lens/table1', '--data-root', str(tmp_path / 'DeepLesion'),
            '--work-dir', str(tmp_path / 'w')]
    assert tool.main(args) == 2
    err = capsys.readouterr().err
    assert f'{tmp_path / "LUNA16"} is a release replica' in err
    assert not (tmp_path / 'w').exists()


def test_config_cfg_options(tool, tmp_path, capsys):
    """``--config-cfg-options NAME KEY=VALUE ...`` (repeatable) replace
    ``--cfg-options`` in the stages of the configs named; a first word
    with ``=`` is refused, naming the option."""
    args = ['lens/table1', '--rows', 'e', '--dry-run', '--time-iters', '0',
            '--work-dir', str(tmp_path), '--cfg-options', 'a.b=1']
    assert tool.main(args + ['--config-cfg-options', 'lens-fpr', 'a.c=2',
                             '--config-cfg-options', 'lens-afp-multi-'
                             'fusion-mining', 'a.d=3']) == 0
    trains = [ln for ln in capsys.readouterr().out.splitlines()
              if 'tools/train.py' in ln]
    assert len(trains) == 3  # (c), (d), the FPR network
    assert ['a.b=1' in t for t in trains] == [True, False, False]
    assert ['a.d=3' in t for t in trains] == [False, True, False]
    assert ['a.c=2' in t for t in trains] == [False, False, True]
    with pytest.raises(SystemExit):
        tool.main(args + ['--config-cfg-options', 'a.c=2'])
    assert '--config-cfg-options a.c=2: the first word is a config name' \
        in capsys.readouterr().err
