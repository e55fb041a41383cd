# Copyright (c) mmlesion contributors. All rights reserved.
"""ElixirNet's Tables 1, 2, 3, 4 and Table 5's FPN and TRPN rows end to
end at tiny size (Table 5's other rows: ``test_e2e_elixirnet_rows.py``):
the full-size configs, shrunk only by appended ``--cfg-options``
(:data:`tests.helpers.elixirnet_tiny.TINY_LAST`, with
:data:`~tests.helpers.elixirnet_tiny.ROIS`).

Table 3 runs every row on a KiTS19 replica (the Deformv2 rows with their
own options: ``--config-cfg-options dcnv2``). Table 6's random-search row
runs with ``--search-cfg-options`` ranking 4 candidates instead of 1,000,
then its differentiable-search rows from the same baseline.
Tables 1, 2, 4 and Table 5's FPN and TRPN rows run into one
``--work-dir``: a stage is named by its command, so the FPN training that
the four tables share runs once, as it does for a user who gives them one
folder; Table 5 then resumes (nothing runs twice) and ``--compare`` names
its regressions."""
import json

import pytest

from tests.helpers.elixirnet_tiny import (ROIS, TINY_LAST, TINY_NO_VAL,
                                          TINY_TABLE6, deformable)
from tests.helpers.measured_cells import measured_rows
from tests.helpers.tool_modules import load_tool

# Stages run as forks of a process that imported mmdet once (conftest).
pytestmark = pytest.mark.usefixtures('tools_forked')


#: :data:`TINY_NO_VAL` at the small KiTS19 replica's own 128 px (its 2D
#: export's slices; 256 would enlarge them)
KITS19_2D = [o.replace('(256,256)', '(128,128)') for o in TINY_NO_VAL]


def _rows(work):
    table = json.loads((work / 'table.json').read_text())
    return {r['key']: r for r in table['rows']}


def test_tables_1_2_4_share_the_fpn_training(tiny_demo_root, tmp_path,
                                             capsys):
    tool = load_tool('reproduce.py')
    work = tmp_path / 'elixirnet'
    common = ['--seeds', '0', '--work-dir', str(work), '--data-root',
              f'{tiny_demo_root}/', '--cfg-options', *TINY_LAST, *ROIS]

    assert tool.main(['elixirnet/table1', '--rows', 'fpn', *common]) == 0
    assert capsys.readouterr().out.count('tools/train.py') == 1
    fpn = _rows(work)['fpn']
    assert fpn['paper']['sens@4'] == 83.55  # the paper's FPN row
    assert 0 <= fpn['ours']['sens@4']['mean'] <= 100
    assert 0 <= fpn['ours']['bbox_mAP']['mean'] <= 100  # Table 1's mAP

    # Table 2: the same training, tested with IoU and with IoBB
    assert tool.main(['elixirnet/table2', '--rows', 'fpn_iou', 'fpn_iobb',
                      *common]) == 0
    out = capsys.readouterr().out
    assert 'tools/train.py' not in out  # shared with Table 1
    assert out.count('tools/test.py') == 2
    rows = _rows(work)
    assert set(rows) == {'fpn_iou', 'fpn_iobb'}
    # each row beside the paper's numbers under its own criterion
    assert rows['fpn_iou']['paper']['sens@0.5'] == 60.57  # Table 1
    assert rows['fpn_iobb']['paper']['sens@0.5'] == 62.17  # Table 2
    assert 'bbox_mAP' not in rows['fpn_iobb']['paper']
    iou = rows['fpn_iou']['ours']['sens@4']['mean']
    iobb = rows['fpn_iobb']['ours']['sens@4']['mean']
    assert iobb >= iou  # a box's IoBB is never below its IoU

    # Table 4: Table 1's FPN is the start; 6 epochs of typed fine-tuning
    assert tool.main(['elixirnet/table4', '--rows', 'fpn_ft', *common]) == 0
    out = capsys.readouterr().out
    assert 'faster-rcnn_r50_fpn_4xb2-ft-6e_deeplesion-3slice-multitype' \
        in out
    (row, ) = _rows(work).values()
    assert row['key'] == 'fpn_ft' and row['seeds'] == [0]
    assert (work / 'table.md').read_text().count('| FPN w finetune |') == 1

    # Table 5's FPN row is Table 1's (the same training and test, found
    # done): only its TRPN row trains; a second run resumes (none runs
    # again); --compare names the one-epoch models' regressions
    args = ['elixirnet/table5', '--rows', 'fpn', 'trpn', *common]
    ran = (work / 'commands.sh').read_text()  # every command run, appended
    assert tool.main(args) == 0
    out = capsys.readouterr().out
    assert out.count('tools/train.py') == 1 and 'trpn' in out
    rows = _rows(work)
    assert set(rows) == {'fpn', 'trpn'}
    for row in rows.values():
        assert row['seeds'] == [0]
        assert 0 <= row['ours']['sens@3']['mean'] <= 100
        assert row['paper']['sens@3'] in (81.51, 83.61)
    md = (work / 'table.md').read_text()
    assert '| FPN | ' in md and '81.51 / ' in md
    assert (work / 'froc.png').stat().st_size > 0
    commands = (work / 'commands.sh').read_text()
    assert commands.startswith(ran)  # and the TRPN's training and test
    assert commands[len(ran):].count('tools/train.py') == 1
    assert commands[len(ran):].count('tools/test.py') == 1
    assert 'elixirnet-trpn_r50' in commands[len(ran):]
    assert tool.main(args) == 0
    assert 'tools/train.py' not in capsys.readouterr().out
    assert (work / 'commands.sh').read_text() == commands
    assert tool.main(args + ['--compare']) == 1
    out = capsys.readouterr().out
    assert 'regression: FPN (faster-rcnn_r50_fpn_4xb2-1x_deeplesion-' \
        '3slice): sens@3' in out


def test_table3_on_a_kits19_replica(tmp_path, capsys):
    """Table 3: the KiTS19 release converted to 3-slice key slices by the
    row's own first stage, then the FPN row, then the other rows."""
    data = tmp_path / 'data'
    assert load_tool('projects/replicas/tools/generate_release_replica.py').main(
        ['kits19', '--out', str(data / 'kits19'), '--size', 'small',
         '--quiet']) == 0
    # its three labelled cases all fall in the 80 % training share of the
    # split by case id: the third becomes case_00004, a test case of it
    cases = data / 'kits19' / 'data'
    (cases / 'case_00002').rename(cases / 'case_00004')
    records = json.loads((cases / 'kits.json').read_text())
    for record in records:
        if record['case_id'] == 'case_00002':
            record['case_id'] = 'case_00004'
    (cases / 'kits.json').write_text(json.dumps(records))
    work = tmp_path / 'table3'
    assert _kits19_rows(work, data, ['fpn'], capsys).count(
        'tools/dataset_converters/kits19.py') == 1
    # the other rows, from the same export (found done)
    rows = ['elixirnet_fpn', 'deformv2', 'elixirnet_deformv2']
    assert 'kits19.py' not in _kits19_rows(work, data, rows, capsys)


def _kits19_rows(work, data, rows, capsys) -> str:
    """Table 3's ``rows`` on the KiTS19 export in ``data``, each a
    training and a test (the Deformv2 rows with their own options), every
    measured cell checked; returns what the tool printed."""
    options = KITS19_2D + ROIS
    assert load_tool('reproduce.py').main([
        'elixirnet/table3', '--rows', *rows, '--seeds', '0', '--work-dir',
        str(work), '--data-root', f'{data / "kits19_2d"}/',
        '--allow-replica', '--cfg-options', *options,
        '--config-cfg-options', 'dcnv2', *deformable(options)
    ]) == 0
    out = capsys.readouterr().out
    assert out.count('tools/train.py') == len(rows)
    measured_rows(work, rows)
    return out


def test_table6_trains_the_searched_config_on_the_same_data(tmp_path):
    """Table 6's one command searches and trains: the training gets the
    search's data root, seed and options too (``search_alb.py`` applies
    ``--cfg-options`` to the search only; its training read
    ``data/DeepLesion`` with the config's seed). The search at full size
    costs minutes even shrunk; ``tests/test_tools/test_search_alb.py`` runs
    search, written config and training end to end on the demo search."""
    from mmlesion.apps.reproduce import PlanContext, build_rows
    ctx = PlanContext(work_dir=str(tmp_path), python='python',
                      data_root='/data/DL/', cfg_options=['a.b=1'],
                      search_cfg_options=['train_cfg.num_candidates=8'])
    for row in build_rows('elixirnet/table6', ctx, None, [3]):
        (argv, ) = [s.argv for s in row.stages if s.name == 'search_and_train']
        search = argv[argv.index('--cfg-options') + 1:
                      argv.index('--train-cfg-options')]
        train = argv[argv.index('--train-cfg-options') + 1:]
        common = ['randomness.seed=3', 'data_root=/data/DL/', 'a.b=1']
        # the search-only options last, to the search alone
        assert search == common + ['train_cfg.num_candidates=8']
        assert train == common
        for stage in row.stages:  # the baseline and the test: not theirs
            if stage.name != 'search_and_train':
                assert 'train_cfg.num_candidates=8' not in stage.argv


def test_table6_random_search_row(tiny_demo_root, tmp_path, capsys):
    """Table 6's "random ALB": the FPN baseline, the random search with
    weight sharing on it (4 candidates ranked, the best on the arch half),
    the + ALB config with the drawn genotype trained and tested. The
    options shrink all three (:data:`TINY_TABLE6`)."""
    work = tmp_path / 'table6'
    assert load_tool('reproduce.py').main([
        'elixirnet/table6', '--rows', 'random', '--seeds', '0', '--work-dir',
        str(work), '--data-root', f'{tiny_demo_root}/', '--cfg-options',
        *TINY_TABLE6, '--search-cfg-options', 'train_cfg.num_candidates=4',
        'train_cfg.candidate_batches=1', 'train_cfg.num_finalists=1']) == 0
    out = capsys.readouterr().out
    assert out.count('tools/search_alb.py') == 1
    search = work / 'elixirnet-alb-search-random' / 'seed_0'
    ranked = json.loads((search / 'random_search.json').read_text())
    assert len(ranked['candidates']) == 4  # the option reached the search
    written = (search / 'searched_config.py').read_text()
    assert 'genotypes' in written
    (row, ) = _rows(work).values()
    assert row['key'] == 'random' and row['seeds'] == [0]
    assert row['paper'] == {'sens@3': 81.84, 'bbox_mAP': 32.1}
    assert 0 <= row['ours']['sens@3']['mean'] <= 100

    # the searched rows: the differentiable search in ElixirNet's space and
    # in DARTS' (w/o search space) from the same baseline (found done), each
    # searched config trained and tested
    rows = ['elixirnet', 'wo_search_space']
    assert load_tool('reproduce.py').main([
        'elixirnet/table6', '--rows', *rows, '--seeds', '0', '--work-dir',
        str(work), '--data-root', f'{tiny_demo_root}/', '--cfg-options',
        *TINY_TABLE6]) == 0
    out = capsys.readouterr().out
    assert out.count('tools/search_alb.py') == 2
    assert 'tools/train.py' not in out  # the baseline's training is done
    measured_rows(work, rows)
