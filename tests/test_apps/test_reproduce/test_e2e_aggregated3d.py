# Copyright (c) mmlesion contributors. All rights reserved.
"""``tools/reproduce.py aggregated3d/table3`` end to end at tiny size, as a
user runs it: a LUNA16 release replica converted with the README's
converter command, then the Table III row 3D-AG, one seed, folds 0 and 1
(the replica's three scans: subset0 holds one with nodules and one
without, subset1 one with nodules): the Table II row d
stage (the RPN, every fold), then the row's second stage from it, the folds
pooled into one FROC by ``tools/luna16_cv.py`` each time. Then Table II
row d into the same folder: the same RPN stage, found done. The full-size
configs are shrunk only by appended ``--cfg-options`` (model width, 3 mm
voxels, crop and window, one epoch, no validation pass); the configs' RPN
score cut (0.269) stays, applied after the uncut test. A second run
resumes: every stage has its marker, nothing trains.

Then Table II row f (the RPN's ABS round: hard regions per fold, the
RPN† trained from them) and Fig. 4c's RPN row, which reads its run (its
TNP on the replica's scan without a nodule, with and without the 0.269
RPN score cut); then Table III's
† rows 3D-AG-LM† and 3D-AG† (each its round 1 per fold from the RPN stage,
hard regions, round 2) and the merged rows that pool them, and Table IV's
3D-AG (3D-AG-LM†); then Table III's other second stages (Crop 96 with
and without Magnify, Alternating, 3D-AG-LM), each from the same RPN stage.

Last, in the same folder (the RPN stage found done, not trained again):
Table III's no-DA † row and Table II's other RPN variants (rows a, b, c,
e). Left out: the other eight folds (the plans of
the † and merged rows are checked below without training)."""
import json
import math
import os.path as osp

import pytest

from mmlesion.apps.reproduce import PlanContext, build_rows
from mmlesion.apps.reproduce.execute import (root_options, stage_id,
                                             trained_epochs)
from tests.helpers.measured_cells import measured_rows
from tests.helpers.tool_modules import load_tool

# Stages run as forks of a process that imported mmdet once (conftest).
pytestmark = pytest.mark.usefixtures('tools_forked')

RPN = 'configs/aggregated3d/rpn3d-focal_denseunet3d_anchor1_4xb2-50e_luna16.py'
#: shrink the full-size 3D-AG / RPN configs to seconds on a CPU (appended,
#: never edited into the configs; both configs take every key)
TINY = [
    'train_cfg.max_epochs=1', 'train_cfg.val_begin=2',
    'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
    'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False',
    'train_dataloader.batch_size=1',
    'train_dataloader.dataset.crops_per_scan=1',
    'model.backbone.base_channels=4', 'model.backbone.growth_rate=8',
    'train_dataloader.dataset.pipeline.2.crop_size=32',
    'model.test_cfg.window_size=48', 'model.test_cfg.overlap=16',
    'model.test_cfg.score_thr=0', 'model.test_cfg.show_progress=False',
    'model.test_cfg.rpn.nms_pre=30', 'model.test_cfg.rpn.max_per_img=5',
    'model.test_cfg.max_per_img=20',
    'model.train_cfg.rpn_proposal.max_per_img=8',
    'model.train_cfg.fprn.sampler.num=8',
    'train_dataloader.dataset.pipeline.0.spacing_zyx=(3.,3.,3.)',
    'test_dataloader.dataset.pipeline.0.spacing_zyx=(3.,3.,3.)'
]
ROWS = {'3dag': ('3D-AG (Crop 128, DA, Magnify, Joint)', 0.93)}


@pytest.fixture(scope='module')
def luna16(tmp_path_factory):
    """A LUNA16 replica converted as configs/aggregated3d/README.md says."""
    root = tmp_path_factory.mktemp('a3d') / 'LUNA16'
    assert load_tool('projects/replicas/tools/generate_release_replica.py').main(
        ['luna16', '--out', str(root), '--size', 'tiny', '--quiet']) == 0
    r = str(root)
    assert load_tool('dataset_converters/luna16.py').main([
        r, '--annotations', f'{r}/annotations.csv', '--excluded',
        f'{r}/annotations_excluded.csv', '--seriesuids',
        f'{r}/seriesuids.csv', '--out', f'{r}/annotations/luna16.json'
    ]) == 0
    return root


def _markers(work):
    return {p.name: p.stat().st_mtime_ns
            for p in (work / '.reproduce').glob('*.json')}


def test_table3_end_to_end_and_resume(luna16, tmp_path, capsys):
    tool = load_tool('reproduce.py')
    work = tmp_path / 'table3'
    args = ['aggregated3d/table3', '--rows', '3dag', '--folds',
            '0', '1', '--seeds', '0', '--work-dir', str(work),
            '--data-root', str(luna16), '--cfg-options', *TINY]
    # the converted replica is still a replica: refused unless asked
    assert tool.main(args) == 2
    assert 'is a release replica' in capsys.readouterr().err
    assert not work.exists()
    assert tool.main(args + ['--allow-replica']) == 0
    out = capsys.readouterr().out
    # Table II row d (the RPN stage), then the row's second stage
    assert out.count('tools/luna16_cv.py') == 2
    assert out.count(': cv_rpn_stage (') == 1

    table = json.loads((work / 'table.json').read_text())
    rows = {r['key']: r for r in table['rows']}
    assert set(rows) == set(ROWS)
    for key, (label, cpm) in ROWS.items():
        row = rows[key]
        assert row['label'] == label and row['seeds'] == [0]
        assert row['paper'] == {'luna16/cpm': cpm}
        ours = row['ours']
        assert 0 <= ours['luna16/cpm']['mean'] <= 1
        sens = [ours[f'luna16/sens@{r}']['mean']
                for r in ('0.125', '0.25', '0.5', '1', '2', '4', '8')]
        assert all(math.isfinite(v) and 0 <= v <= 100 for v in sens)
        assert sens == sorted(sens)  # a FROC never falls
        cv = work / f"{row['model']}_cv" / 'seed_0'
        # each fold trained and tested, then pooled (subset0 holds the
        # replica's scan without a nodule beside one with nodules)
        for k, scans in ((0, 2), (1, 1)):
            done = json.loads((cv / f'fold{k}' / 'fold_done.json')
                              .read_text())
            assert done['fold'] == k and done['num_scans'] == scans
            assert (cv / f'fold{k}' / 'epoch_1.pth').is_file()
        assert len((cv / 'seriesuids.csv').read_text().split()) == 3
        assert (cv / 'eval' / 'froc.png').stat().st_size > 0
        # the configs' RPN score cut (0.269, Sec. IV-F): the folds tested
        # without it, the cut applied to the same candidates afterwards;
        # the table carries both sides
        cut = json.loads((cv / 'eval' / 'score_cut.json').read_text())
        assert cut['threshold'] == 0.269
        assert cut['with_cut']['num_candidates'] == len(
            (cv / 'candidates.csv').read_text().splitlines()) - 1
        assert cut['without_cut']['num_candidates'] == len(
            (cv / 'candidates_uncut.csv').read_text().splitlines()) - 1
        assert ours['luna16/candidates_per_scan']['mean'] == \
            cut['with_cut']['candidates_per_scan']
        assert ours['luna16/candidates_per_scan_uncut']['mean'] == \
            cut['without_cut']['candidates_per_scan'] >= \
            cut['with_cut']['candidates_per_scan']
        assert ours['luna16/cpm_uncut']['mean'] == cut['without_cut']['cpm']
        assert ours['luna16/cpm']['mean'] == cut['with_cut']['cpm']
    md = (work / 'table.md').read_text()
    assert '| 3D-AG (Crop 128, DA, Magnify, Joint) | paper | 0.93 / 0.' in md
    assert (work / 'froc.png').stat().st_size > 0
    commands = (work / 'commands.sh').read_text().splitlines()
    runs = [c for c in commands if not c.startswith('#')]
    assert len(runs) == 2 and all('tools/luna16_cv.py' in c for c in runs)
    assert all('--folds 0 1' in c for c in runs)
    # the second stage starts from the RPN stage's last epoch of each fold
    rpn_cv = work / f'{osp.basename(RPN)[:-3]}_cv' / 'seed_0'
    assert all(f"--stage-checkpoint '{rpn_cv}/fold{{fold}}/epoch_1.pth'"
               in c for c in runs[1:])
    assert json.loads((rpn_cv / 'eval' / 'metrics.json').read_text())[
        'cpm'] >= 0  # the RPN stage's own pooled FROC
    # the data root reaches every dataset of luna16_cv, key by key
    assert all(f'test_dataloader.dataset.data_root={luna16}/' in c
               for c in runs)
    markers = _markers(work)
    assert len(markers) == 2

    # again: every stage is done, nothing runs, nothing is rewritten
    folds = {p: p.stat().st_mtime_ns for p in work.rglob('fold_done.json')}
    assert len(folds) == 4  # two folds of each stage
    assert tool.main(args + ['--allow-replica']) == 0
    assert 'luna16_cv.py' not in capsys.readouterr().out
    assert _markers(work) == markers
    assert (work / 'commands.sh').read_text().splitlines() == commands
    assert {p: p.stat().st_mtime_ns for p in folds} == folds
    assert json.loads((work / 'table.json').read_text()) == table

    # Table II row d in the same folder is that RPN stage, already done:
    # nothing runs (no training, no pooling), the row is scored against
    # Table II's CPM
    ckpts = {p: p.stat().st_mtime_ns for p in rpn_cv.rglob('*.pth')}
    assert len(ckpts) == 2
    t2 = ['aggregated3d/table2', '--rows', 'd'] + args[3:]
    assert tool.main(t2 + ['--allow-replica']) == 0
    assert 'tools/luna16_cv.py' not in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in ckpts} == ckpts
    assert _markers(work) == markers
    (row_d, ) = json.loads((work / 'table.json').read_text())['rows']
    assert row_d['key'] == 'd' and row_d['paper'] == {'luna16/cpm': 0.91}
    assert row_d['model'] == osp.basename(RPN)[:-3]
    assert row_d['ours']['luna16/cpm']['mean'] == json.loads(
        (rpn_cv / 'eval' / 'metrics.json').read_text())['cpm']
    assert '| Table II row d | paper | 0.91 / 0.' in (work / 'table.md').read_text()

    # Table II row f: the ABS round of that RPN stage (its hard regions per
    # fold, then the RPN† from them); Fig. 4c's RPN row reads its run
    t2f = ['aggregated3d/table2', '--rows', 'f'] + args[3:] + [
        '--allow-replica']
    assert tool.main(t2f) == 0
    out = capsys.readouterr().out
    assert out.count('find_hard_regions.py') == 2 and 'train.py' not in out
    assert out.count('tools/luna16_cv.py') == 1  # the RPN† only
    assert {p: p.stat().st_mtime_ns for p in ckpts} == ckpts
    assert ('rpn3d-focal-abs_' in
            measured_rows(work, ['f'])['f']['model'])
    assert tool.main(['aggregated3d/tnp', '--rows', 'rpn'] + t2f[3:]) == 0
    assert 'tools/' not in capsys.readouterr().out
    # TNP (Sec. IV-G): of the scans without a nodule (the replica's one, in
    # fold 0), those without a false positive above the threshold where
    # the sensitivity reaches 0.95; with the cut (the paper's setting) and
    # without it, from the same run. Where 0.95 is never reached (a
    # one-epoch RPN† finds no nodule here) the paper's column is "-" and
    # the TNP at the highest sensitivity reached is printed in a column of
    # its own, that sensitivity beside it
    metrics = json.loads((work / 'rpn3d-focal-abs_denseunet3d_anchor1_4xb2-'
                          '30e_luna16_cv' / 'seed_0' / 'eval' /
                          'metrics.json').read_text())
    tnp = metrics['tnp']
    assert tnp['num_negative_scans'] == 1
    (tnp_row, ) = json.loads((work / 'table.json').read_text())['rows']
    assert tnp_row['key'] == 'rpn' and tnp_row['paper'] == {'luna16/tnp': 0.38}
    ours = tnp_row['ours']
    uncut = metrics['score_cut']['without_cut']
    for col, at_target, best in (
            ('luna16/tnp', tnp['tnp'], tnp['at_highest_sensitivity']),
            ('luna16/tnp_uncut', uncut['tnp'],
             uncut['tnp_at_highest_sensitivity'])):
        sens_col = col.replace('tnp', 'max_sens')
        if at_target is None:  # 0.95 never reached: "-", the other columns
            assert col not in ours and best['sensitivity'] < 0.95
            assert ours[f'{col}@max_sens']['mean'] == best['tnp']
            assert ours[sens_col]['mean'] == best['sensitivity']
        else:
            assert ours[col]['mean'] == at_target and best is None
            assert f'{col}@max_sens' not in ours and sens_col not in ours
    # a number at this size, either way: one scan without a nodule, with
    # or without a false positive at the threshold
    assert ours.get('luna16/tnp', ours.get('luna16/tnp@max_sens'))[
        'mean'] in (0., 1.)
    md = (work / 'table.md').read_text()
    assert '| Baseline RPN (Table II row f) |' in md
    assert 'luna16/tnp@max_sens paper / ours' in md

    # Table III's merged rows: the two † rows they pool (round 1 of 3D-AG-LM
    # and of 3D-AG per fold from the RPN stage, their hard regions, round
    # 2), their candidates merged and scored; Table IV's 3D-AG is 3D-AG-LM†
    rows3 = ['3dag_lm_abs', '3dag_abs', 'merged_intersection',
             'merged_union']
    assert tool.main(['aggregated3d/table3', '--rows', *rows3] + t2f[3:]
                     ) == 0
    out = capsys.readouterr().out
    assert out.count('tools/train.py') == 4  # round 1: 2 configs x 2 folds
    assert out.count('find_hard_regions.py') == 4
    assert out.count('merge_luna16_candidates.py') == 2
    measured_rows(work, rows3)
    assert tool.main(['aggregated3d/table4', '--rows', '3dag'] + t2f[3:]
                     ) == 0
    assert 'tools/' not in capsys.readouterr().out
    measured_rows(work, ['3dag'])

    # Table III's other second stages, each from the same RPN stage (found
    # done: one luna16_cv per row, no RPN training)
    second = ['crop96_da', 'crop96_da_magnify', 'alternating', '3dag_lm']
    assert tool.main(['aggregated3d/table3', '--rows', *second] + t2f[3:]
                     ) == 0
    out = capsys.readouterr().out
    assert out.count('tools/luna16_cv.py') == len(second)
    assert ': cv_rpn_stage (' not in out
    assert {p: p.stat().st_mtime_ns for p in ckpts} == ckpts
    measured_rows(work, second)

    # Table III's no-DA † row (the RPN stage found done: its own round 1
    # per fold, hard regions, round 2), then Table II's other RPN variants,
    # each its own RPN stage (row d's, done, is not among them)
    assert tool.main(['aggregated3d/table3', '--rows', 'wo_da_abs'] +
                     t2f[3:]) == 0
    out = capsys.readouterr().out
    assert ': cv_rpn_stage (' not in out
    assert out.count('tools/train.py') == 2  # round 1, 2 folds
    assert out.count('find_hard_regions.py') == 2
    assert {p: p.stat().st_mtime_ns for p in ckpts} == ckpts
    measured_rows(work, ['wo_da_abs'])
    variants = ['a', 'b', 'c', 'e']
    assert tool.main(['aggregated3d/table2', '--rows', *variants] + t2f[3:]
                     ) == 0
    assert capsys.readouterr().out.count(': cv_rpn_stage (') == len(variants)
    measured_rows(work, variants)


def test_epochs_and_data_paths_follow_the_options(tmp_path):
    """The checkpoint a later stage reads is the epoch the training ends
    at with the user's options; a data root moves every dataset path."""
    ctx = PlanContext(str(tmp_path), cfg_options=['train_cfg.max_epochs=3'])
    assert trained_epochs(ctx, RPN) == 3
    assert trained_epochs(PlanContext(str(tmp_path)), RPN) == 50
    opts = root_options(RPN, [('data/LUNA16/', '/x/L')])
    assert 'train_dataloader.dataset.data_root=/x/L/' in opts
    assert ('train_dataloader.dataset.pipeline.1.mask_dir='
            '/x/L/seg-lungs-LUNA16/') in opts
    assert 'test_dataloader.dataset.data_root=/x/L/' in opts
    assert root_options(RPN, [('data/elsewhere/', '/x')]) == []


def test_abs_and_merged_rows_use_their_own_round_one(tmp_path):
    """A † row: round 1 per seed inside the table's folder, started from
    this seed's RPN stage; its hard regions from the epoch it ends at; round
    2 from both (not from the README's work_dirs/ defaults). A merged row
    is scored on the scans of the folds run."""
    ctx = PlanContext(str(tmp_path / 'w'), data_root='/d/LUNA16',
                      folds=[2, 5], python='python', gpus=0,
                      cfg_options=['train_cfg.max_epochs=2'])
    (row, ) = build_rows('aggregated3d/table3', ctx, ['3dag_abs'], [1])
    names = [s.name for s in row.stages]
    assert names == ['cv_rpn_stage', 'round1_fold2', 'hard_regions_fold2',
                     'round1_fold5', 'hard_regions_fold5', 'cv_abs']
    r1 = osp.join(ctx.work_dir, 'aggregated3d_denseunet3d_anchor1_4xb2-50e_'
                  'luna16_round1', 'seed_1')
    round1 = row.stages[3].argv
    assert round1[round1.index('--work-dir') + 1] == osp.join(r1, 'fold5')
    assert any(a.startswith('load_from=') and a.endswith(
        'rpn3d-focal_denseunet3d_anchor1_4xb2-50e_luna16_cv/seed_1/fold5/'
        'epoch_2.pth') for a in round1)
    hard = row.stages[4].argv
    assert hard[3] == osp.join(r1, 'fold5', 'epoch_2.pth')
    assert hard[hard.index('--device') + 1] == 'cpu'
    assert row.stages[4].outputs == [
        osp.join(r1, 'fold5', 'hard_regions_fold5.json')]
    cv = row.stages[-1].argv
    assert cv[cv.index('--stage-checkpoint') + 1] == osp.join(
        r1, 'fold{fold}', 'epoch_2.pth')
    assert ('train_dataloader.dataset.pipeline.2.hard_regions_file=' +
            osp.join(r1, 'fold0', 'hard_regions_fold0.json')) in cv
    assert 'work_dirs/' not in ' '.join(' '.join(s.argv) for s in row.stages)
    # one RPN stage for every row of a seed (run once)
    (lm, ) = build_rows('aggregated3d/table3', ctx, ['3dag_lm'], [1])
    assert stage_id(lm.stages[0]) == stage_id(row.stages[0])
    assert lm.stages[0].name == 'cv_rpn_stage'
    # Table II row f (the RPN†): its round 1 is the RPN stage itself
    (rpn_row, ) = build_rows('aggregated3d/table2', ctx, ['f'], [1])
    assert not any(s.name.startswith('round1') for s in rpn_row.stages)
    assert stage_id(rpn_row.stages[0]) == stage_id(row.stages[0])
    (merged, ) = build_rows('aggregated3d/table3', ctx,
                            ['merged_union'], [1])
    ev = merged.stages[-1].argv
    assert ev[ev.index('--seriesuids') + 1].endswith(
        'aggregated3d-wo-magnify-abs_denseunet3d_anchor1_4xb2-30e_luna16_cv'
        '/seed_1/seriesuids.csv')
