# Copyright (c) mmlesion contributors. All rights reserved.
"""``tools/reproduce.py``'s LENS tables end to end at tiny size, as a user
runs it: release replicas of DeepLesion, LUNA16, LiTS and NIH-LN side by
side in one data folder (``--data-root <data>/DeepLesion``), then rows (b)
and (c) of Table I, one seed: the three exports to DeepLesion's layout,
the four-dataset LENS training (one, shared by both rows), the 3D
evaluation on the manual test set of its DeepLesion expert (b) and of the
four experts fused (c). The full-size configs are shrunk only by appended
``--cfg-options`` (the demo configs' tiny DenseNet, DeepLesion's slices
at 2.5 mm pixels instead of 0.8, one epoch, no validation pass), which reach every stage that
builds the model. A second run resumes: nothing runs again.

Then row (d) in the same folder: the (c) model mines
DeepLesion's training split (``tools/lens_mine_annotations.py``: delta of
the intra-patient matching calibrated on same-patient lesion pairs, then
the three strategies), (d) trains on the mined file and is tested in 3D.
The tiny DeepLesion replica has no patient with several studies, and the
calibration wants 20 same-lesion pairs: the data fixture gives its
training patient four follow-up studies, planned and written by the
replica's own generator.

Then Table III's mined rows in the same folder: the (c) model mines
again with propagation alone (and with intra-patient matching), row
(a)'s model on DeepLesion alone retrains on each file, is tested in 3D
and its training set counted; Tables II and IV from row (d)'s stages
(their AFP and "Proposed" rows); row (e), the 3D FPR network on (d)'s
proposals.

The MULAN baseline and (a) (AFP) run too, in a second invocation: each
trains on DeepLesion alone (a one-dataset ``LENSMultiDataset``); Table
III's "No mining" (its training set counted) and Table IV's "Single
dataset" are (a) in that folder.

One ``--cfg-options`` list serves every config, with one training set
(DeepLesion) or four: the 2.5 mm pixels are set on dataset 0 alone
(DeepLesion; an option on dataset 3 would not exist in a one-dataset
config), so the exported LUNA16, LiTS and NIH-LN slices keep the configs'
0.8 mm; the stages of every table then have the same commands and run
once in one folder.

Last in the same folder (the (c) model, the exports and row (d)'s mined
file found done, not trained or mined again): Table II's other proposal
networks and Table IV's pools, separate models and "Ignored as GT", each
its own training (the one-stage FCOS, the separate models and "Ignored
as GT" with their own shrinking options: ``--config-cfg-options``)."""
import json
import math
from dataclasses import replace

import numpy as np
import pytest

from projects.replicas.deeplesion import deeplesion_generator
from projects.replicas.marker import replica_size
from mmlesion.datasets.replica_marker import (REPLICA_FILE,
                                              read_replica_marker)
from mmlesion.datasets.deeplesion.dl_info import parse_dl_info
from mmlesion.methods.lens.mining.calibration import (MIN_CALIBRATION_PAIRS,
                                                      deeplesion_proxy_same,
                                                      pair_distances)
from mmlesion.methods.lens.tables import SPEED_COLUMNS, STRATEGIES
from tests.helpers.measured_cells import measured_rows
from tests.helpers.tool_modules import load_tool

# Stages run as forks of a process that imported mmdet once (conftest).
pytestmark = pytest.mark.usefixtures('tools_forked')

#: shrink the full-size MULAN / LENS configs to seconds on a CPU (the
#: demo configs' model; appended, never edited into the configs)
TINY_MODEL = [
    'train_cfg.max_epochs=1', 'train_cfg.val_begin=2',
    'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
    'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False',
    'model.backbone.growth_rate=8', 'model.backbone.block_config=(2,2,2)',
    'model.backbone.num_init_features=16', 'model.backbone.bn_size=2',
    'model.backbone.init_cfg=None', 'model.neck.in_channels=[32,32,32]',
    'model.neck.out_channels=32', 'model.rpn_head.in_channels=32',
    'model.rpn_head.feat_channels=32',
    'model.roi_head.bbox_roi_extractor.out_channels=32',
    'model.roi_head.bbox_head.in_channels=32',
    'model.roi_head.bbox_head.fc_out_channels=128',
    'model.train_cfg.rpn_proposal.nms_pre=200',
    'model.train_cfg.rpn_proposal.max_per_img=50',
    'model.train_cfg.rcnn.sampler.num=32', 'model.test_cfg.rpn.nms_pre=100',
    'model.test_cfg.rpn.max_per_img=20', 'model.test_cfg.rcnn.max_per_img=10',
    'test_dataloader.dataset.pipeline.4.spacing=2.5'
]


#: :data:`TINY_MODEL` with DeepLesion's training slices at 2.5 mm (its
#: dataset 0 in every LENS config, of one training set or four)
TINY = TINY_MODEL + [
    'train_dataloader.dataset.datasets.0.pipeline.4.spacing=2.5']
#: shrink LENS's 3D FPR network (Table I row (e)) in its own options: the
#: same architecture at a quarter of its width (the 3D evaluation builds
#: it with these options too), one epoch of batches of 3 proposals, no
#: ImageNet weights (no network in CI)
TINY_FPR = ['train_cfg.max_epochs=1', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
            'train_dataloader.batch_size=3', 'model.backbone.init_cfg=None',
            'model.backbone.base_channels=16', 'model.fc_channels=64']
#: :data:`TINY` for Table II's one-stage FCOS (no RPN, no RoI head: its
#: FCOS head and its test settings instead)
TINY_ONE_STAGE = [o for o in TINY if not o.startswith((
    'model.rpn_head.', 'model.roi_head.', 'model.train_cfg.',
    'model.test_cfg.'))] + [
        'model.bbox_head.in_channels=32', 'model.bbox_head.feat_channels=32',
        'model.test_cfg.nms_pre=100', 'model.test_cfg.max_per_img=10']
#: :data:`TINY` for Table IV's separate models: the same options on the
#: detector each dataset gets
TINY_SEPARATE = [o.replace('model.', 'model.detector.', 1) for o in TINY]
#: :data:`TINY` for Table IV's "Ignored as GT": the one-epoch (c) model's
#: uncertain boxes, taken as ground truth, make most mined slices positives
#: (about 600 slices an epoch, where (d) trains on about 20): its first 24
#: DeepLesion samples (the key slices, then mined ones)
TINY_UNCERTAIN_GT = TINY + ['train_dataloader.dataset.datasets.0.indices=24']
RATES = ('0.125', '0.25', '0.5', '1', '2', '4', '8')
#: the paper's mean sensitivity of each row (configs/lens/metafile.yml)
ROWS = {'b': ('(b) + multi-dataset', 37.3),
        'c': ('(c) + proposal fusion', 39.4)}
#: the work folder of the (c) model, which mines for (d)
_LENS_C = ('lens-afp-multi-fusion_densenet121-2.5d_fpn_1xb4-radam-8e_'
           'deeplesion-luna16-lits-nihln-9slice')
ONE_DATASET_ROWS = {'baseline': ('MULAN (baseline)', 33.9),
                    'a': ('(a) AFP', 36.8)}


#: follow-up studies of the DeepLesion replica's training patient (its
#: three annotated lesions in seven studies: 3 x C(7, 2) = 63 pairs, of
#: which the location / size proxy calls 23 the same lesion, since
#: follow-up lesions move, grow and shrink; four follow-ups give 8, fewer
#: than the 20 the mining tool calibrates delta on)
FOLLOW_UPS = 6


def _add_follow_ups(root, studies=FOLLOW_UPS, seed=0):
    """The tiny DeepLesion replica's training patient with the most
    annotated lesions comes back in ``studies`` follow-up studies, as
    DeepLesion's patients do: the replica's own generator plans them
    (``_plan_followup``: same lesions, grown or shrunk, new acquisition)
    and writes them (``_write_series``, ``write_csv``). Every lesion keeps
    its CSV row (the calibration of the intra-patient matching pairs
    annotated lesions), 5 mm slices (13 per series: mining runs on every
    stored slice); the val / test patients and the manual 3D set are
    untouched."""
    gen = deeplesion_generator(replica_size('tiny'), seed)
    series = gen.plan()
    base = max((s for s in series if s.split == 'train'),
               key=lambda s: sum(les.annotated for key in s.keys
                                 for les in key.lesions))
    own = gen.config
    gen.config = replace(own, followup_missing_prob=0.,
                         slice_intervals=(5., ), slice_interval_probs=(1., ))
    extra = []
    for study in range(2, 2 + studies):
        s = gen._plan_followup(np.random.default_rng(
            [seed, base.patient, study]), base, study, len(base.keys))
        s.patient, s.gender = base.patient, base.gender
        s.age = None if base.age is None else base.age + study - 1
        extra.append(s)
    gen.config = own
    gen._planned = series + extra
    for s in extra:
        gen._write_series(root, s)
    gen.write_csv(root / 'DL_info.csv')


def _same_lesion_pairs(root) -> int:
    """Same-lesion pairs (one patient, other series) of the training
    split's rows, by the proxy the mining tool calibrates delta on
    (noisy rows are not trained on, nor paired)."""
    recs = [r for r in parse_dl_info(str(root / 'DL_info.csv'))
            if r.split == 1 and not r.noisy]
    rows = [dict(lesion_type=r.lesion_type,
                 location=tuple(r.normalized_location),
                 diameter_px=float(r.diameters_px[0])) for r in recs]
    same, _ = pair_distances(np.zeros((len(recs), 1)),
                             [r.series_name for r in recs],
                             [r.patient_index for r in recs],
                             deeplesion_proxy_same(rows))
    return len(same)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """The four releases LENS reads, as replicas, in one data folder;
    DeepLesion's training patient with follow-up studies (the tiny
    replica has none: too few same-lesion pairs for the mining tool to
    calibrate delta on)."""
    root = tmp_path_factory.mktemp('lens') / 'data'
    tool = load_tool('projects/replicas/tools/generate_release_replica.py')
    for dataset, folder in (('deeplesion', 'DeepLesion'),
                            ('luna16', 'LUNA16'), ('lits', 'LiTS'),
                            ('nih_ln', 'NIH-LN')):
        assert tool.main([dataset, '--out', str(root / folder), '--size',
                          'tiny', '--quiet']) == 0
    assert _same_lesion_pairs(root / 'DeepLesion') == 0
    _add_follow_ups(root / 'DeepLesion')
    assert _same_lesion_pairs(root / 'DeepLesion') >= MIN_CALIBRATION_PAIRS
    return root


def _markers(work):
    return {p.name: p.stat().st_mtime_ns
            for p in (work / '.reproduce').glob('*.json')}


def _check_rows(table, rows):
    got = {r['key']: r for r in table['rows']}
    assert set(got) == set(rows)
    for key, (label, mean) in rows.items():
        row = got[key]
        assert row['label'] == label and row['seeds'] == [0]
        assert row['paper']['froc3d/mean@0.125-8'] == mean
        ours = row['ours']
        sens = [ours[f'froc3d/sens@{r}']['mean'] for r in RATES]
        assert all(math.isfinite(v) and 0 <= v <= 100 for v in sens)
        assert sens == sorted(sens)  # a FROC never falls
        assert math.isfinite(ours['froc3d/mean@0.125-8']['mean'])


def test_table1_two_rows_end_to_end_and_resume(data, tmp_path, capsys):
    tool = load_tool('reproduce.py')
    work = tmp_path / 'lens'
    args = ['lens/table1', '--rows', 'b', 'c', '--seeds', '0',
            '--gpus', '0', '--work-dir', str(work), '--data-root',
            str(data / 'DeepLesion'), '--cfg-options', *TINY]
    assert tool.main(args) == 2
    assert 'is a release replica' in capsys.readouterr().err
    assert tool.main(args + ['--allow-replica']) == 0
    out = capsys.readouterr().out
    assert out.count('tools/train.py') == 1  # shared by (b) and (c)
    assert out.count('tools/analysis_tools/eval_lens_3d.py') == 2
    assert out.count('tools/dataset_converters/') == 3

    table = json.loads((work / 'table.json').read_text())
    _check_rows(table, ROWS)
    md = (work / 'table.md').read_text()
    assert '| (b) + multi-dataset | paper | 14.3 / ' in md
    assert '| (c) + proposal fusion | paper | 15.9 / ' in md
    assert (work / 'froc.png').stat().st_size > 0

    # the exports sit beside the releases, in the configs' lens/ folders,
    # and say they are made from replicas
    for name, release in (('luna16', 'LUNA16'), ('lits', 'LiTS'),
                          ('nih_ln', 'NIH-LN')):
        export = data / 'lens' / name
        assert (export / 'DL_info.csv').is_file()
        marker = read_replica_marker(export / REPLICA_FILE)
        assert marker['dataset'] == name
        assert marker['derived_from'] == str(data / release)
    logs = '\n'.join(p.read_text() for p in (work / 'logs').glob('*.log'))
    assert f'{data}/lens/nih_ln is a release replica (nih_ln' in logs

    commands = (work / 'commands.sh').read_text()
    evals = [c for c in commands.splitlines() if 'eval_lens_3d.py' in c]
    for line in evals:  # the 3D evaluation builds the shrunk model too
        assert "'model.backbone.block_config=(2,2,2)'" in line
        assert f"--ann-3d {data}/DeepLesion/DeepLesion_manual_1K_test_" \
            'release.pkl' in line
        assert '--device cpu' in line
    assert f'train_dataloader.dataset.datasets.3.data_root={data}/lens/' \
        'nih_ln/' in commands
    assert commands.count('tools/train.py') == 1
    markers = _markers(work)
    assert len(markers) == 6

    # again: every stage is done, nothing runs, nothing is rewritten
    exports = {p: p.stat().st_mtime_ns
               for p in (data / 'lens').glob('*/DL_info.csv')}
    assert tool.main(args + ['--allow-replica']) == 0
    assert 'tools/' not in capsys.readouterr().out
    assert _markers(work) == markers
    assert (work / 'commands.sh').read_text() == commands
    assert {p: p.stat().st_mtime_ns for p in exports} == exports
    assert json.loads((work / 'table.json').read_text()) == table

    # Row (d) in the same folder: the exports and the (c) model are done;
    # the (c) model mines DeepLesion's training split (delta calibrated on
    # the follow-ups, then the three strategies), (d) trains on the mined
    # file and is tested in 3D
    mining = ['lens/table1', '--rows', 'd'] + args[4:] + ['--allow-replica']
    assert tool.main(mining) == 0
    out = capsys.readouterr().out
    assert 'converters/' not in out
    assert out.count('tools/lens_mine_annotations.py') == 1
    assert out.count('tools/train.py') == 1  # (d)'s; (c)'s is done
    assert out.count('tools/analysis_tools/eval_lens_3d.py') == 1
    table = json.loads((work / 'table.json').read_text())
    _check_rows(table, {'d': ('(d) + mining', 47.6)})
    assert '| (d) + mining | paper | 21.6 / ' in (work / 'table.md').read_text()

    mined = work / 'lens_mining' / 'seed_0' / 'lens_mined.json'
    meta = json.loads(mined.read_text())['metainfo']
    assert meta['strategies'] == list(STRATEGIES)
    pairs = _same_lesion_pairs(data / 'DeepLesion')
    calibration = meta['dist_thr_calibration']
    assert calibration['n_same'] == pairs  # the follow-ups' pairs
    assert meta['dist_thr'] == calibration['delta'] > 0
    counts = meta['counts']
    assert all(counts[s] >= 0 for s in STRATEGIES)
    (log, ) = (work / 'logs').glob('mine-*.log')
    log = log.read_text()
    assert f'{pairs} same / ' in log  # delta calibrated: ...
    for strategy in STRATEGIES:  # the counts the tool prints, as written
        assert f'"{strategy}": {counts[strategy]},' in log
    commands = (work / 'commands.sh').read_text()
    (retrain, ) = [c for c in commands.splitlines()
                   if 'tools/train.py' in c and '-mining_' in c]
    assert f'datasets.0.mined_ann_file={mined}' in retrain
    (mine, ) = [c for c in commands.splitlines()
                if 'lens_mine_annotations.py' in c]
    assert f'{_LENS_C}/seed_0/epoch_1.pth --out {mined} ' in mine  # (c)'s
    markers = _markers(work)
    assert len(markers) == 9  # mine, (d)'s training and 3D test

    # again: nothing is mined, trained or tested again
    stamp = mined.stat().st_mtime_ns
    assert tool.main(mining) == 0
    assert 'tools/' not in capsys.readouterr().out
    assert _markers(work) == markers and mined.stat().st_mtime_ns == stamp
    assert json.loads((work / 'table.json').read_text()) == table

    # Table III's "+ Cross-slice": the (c) model mines again, with
    # propagation alone; (a)'s model (DeepLesion alone) retrains on that
    # file, is tested in 3D, and what it trained on is counted
    t3 = ['lens/table3', '--rows', 'cross_slice'] + args[4:] + [
        '--allow-replica']
    assert tool.main(t3) == 0
    out = capsys.readouterr().out
    assert out.count('tools/lens_mine_annotations.py') == 1
    assert out.count('tools/train.py') == 1 and 'converters/' not in out
    assert out.count('tools/analysis_tools/eval_lens_3d.py') == 1
    assert out.count('tools/analysis_tools/lens_training_counts.py') == 1
    table = json.loads((work / 'table.json').read_text())
    _check_rows(table, {'cross_slice': ('+ Cross-slice', 37.7)})
    propagated = work / 'lens_mining' / 'seed_0' / \
        'lens_mined_propagation.json'
    meta = json.loads(propagated.read_text())['metainfo']
    assert meta['strategies'] == ['propagation']
    assert meta['dist_thr'] is None  # no intra-patient matching: no delta
    (row, ) = table['rows']
    counts = {k: row['ours'][k]['mean'] * 1e3 for k in (
        'lens/lesions_3d_k', 'lens/boxes_2d_k', 'lens/uncertain_2d_k',
        'lens/slices_k')}
    # propagation adds 2D boxes of annotated lesions only (as many as the
    # one-epoch model finds: maybe none), no 3D lesion, no uncertain box
    assert counts['lens/uncertain_2d_k'] == 0
    assert counts['lens/boxes_2d_k'] >= counts['lens/lesions_3d_k'] > 0
    assert counts['lens/slices_k'] > 0
    (retrain, ) = [c for c in out.splitlines() if 'tools/train.py' in c]
    assert 'lens-afp-mining-propagation_' in retrain
    assert f'datasets.0.mined_ann_file={propagated}' in retrain
    assert 'datasets.1.' not in retrain  # DeepLesion alone

    # Table III's other mined rows: the (c) model mines with propagation
    # and intra-patient matching; (d)'s file (all three strategies: found
    # done) trains (a)'s model twice more, without and with the slices
    # that have no annotation
    rows3 = ['intra_patient', 'cross_dataset', 'unlabeled']
    assert tool.main(['lens/table3', '--rows', *rows3] + args[4:] + [
        '--allow-replica']) == 0
    out = capsys.readouterr().out
    assert out.count('tools/lens_mine_annotations.py') == 1
    assert out.count('tools/train.py') == 3 and 'converters/' not in out
    measured_rows(work, rows3)

    # Table II's AFP row and Table IV's "Proposed" are row (d): both tables
    # are made from the stages above, nothing runs
    for spec, rows in (
            (['lens/table2', '--rows', 'afp'],
             {'afp': ('AFP, two stages (Table I row (d))', 47.6)}),
            (['lens/table4', '--rows', 'proposed'],
             {'proposed': ('Proposed (Table I row (d))', 47.6)})):
        assert tool.main(spec + args[4:] + ['--allow-replica']) == 0
        assert 'tools/' not in capsys.readouterr().out
        _check_rows(json.loads((work / 'table.json').read_text()), rows)

    # Row (e): (d)'s model proposes 3D boxes on its mined file, the 3D FPR
    # network trains on them with its own shrinking options (a 3D ResNet:
    # the DenseNet options do not fit it), (d) is tested with both scores
    assert tool.main(['lens/table1', '--rows', 'e'] + args[4:] + [
        '--allow-replica', '--config-cfg-options', 'lens-fpr', *TINY_FPR]
                     ) == 0
    out = capsys.readouterr().out
    assert out.count('tools/lens_fpr_proposals.py') == 1
    (train_e, ) = [c for c in out.splitlines() if 'tools/train.py' in c]
    assert 'lens-fpr_resnet18-3d' in train_e  # (d)'s training is done
    assert 'growth_rate' not in train_e and 'batch_size=3' in train_e
    _check_rows(json.loads((work / 'table.json').read_text()),
                {'e': ('(e) + 3D FPR', 50.4)})

    # Table II's other proposal networks, each trained on row (d)'s mined
    # file (the one-stage FCOS with its own shrinking options), then Table
    # IV's pools and separate models (on the exports alone, nothing mined)
    # and "Ignored as GT" (on that mined file): the (c) model, the exports
    # and the mining are done above, only the rows' own trainings run
    for spec, rows in (
            (['lens/table2', '--rows', 'rpn', 'centernet', 'fcos',
              'fcos_one_stage', '--config-cfg-options', 'lens-fcos-onestage',
              *TINY_ONE_STAGE], ['rpn', 'centernet', 'fcos',
                                 'fcos_one_stage']),
            (['lens/table4', '--rows', 'pooling', 'positive_pooling',
              'separate', 'uncertain_as_gt', '--config-cfg-options',
              'lens-afp-separate', *TINY_SEPARATE, '--config-cfg-options',
              'uncertain-gt', *TINY_UNCERTAIN_GT],
             ['pooling', 'positive_pooling', 'separate', 'uncertain_as_gt'])):
        assert tool.main(spec + args[4:] + ['--allow-replica']) == 0
        out = capsys.readouterr().out
        assert out.count('tools/train.py') == len(rows)
        assert 'lens_mine_annotations' not in out and 'converters/' not in out
        measured_rows(work, rows, not_measured=SPEED_COLUMNS)


def test_table1_baseline_and_afp_end_to_end(data, tmp_path, capsys):
    """The MULAN baseline and (a): one DeepLesion training and one 3D
    evaluation each, no export (they read DeepLesion alone); each row's
    own config and work folder; a rerun runs nothing. Then Table III's and
    Table IV's rows that are (a)."""
    tool = load_tool('reproduce.py')
    work = tmp_path / 'lens'
    args = ['lens/table1', '--rows', 'baseline', 'a', '--seeds', '0',
            '--gpus', '0', '--work-dir', str(work), '--data-root',
            str(data / 'DeepLesion'), '--allow-replica', '--cfg-options',
            *TINY]
    assert tool.main(args) == 0
    out = capsys.readouterr().out
    assert out.count('tools/train.py') == 2
    assert out.count('tools/analysis_tools/eval_lens_3d.py') == 2
    assert 'tools/dataset_converters/' not in out
    table = json.loads((work / 'table.json').read_text())
    _check_rows(table, ONE_DATASET_ROWS)
    md = (work / 'table.md').read_text()
    base = next(ln for ln in md.splitlines()  # a marked variant
                if ln.startswith('| MULAN (baseline) | variant: '))
    assert "MULAN's detector only" in base and '| 11.2 / ' in base
    assert '| (a) AFP | paper | 15.8 / ' in md
    commands = (work / 'commands.sh').read_text()
    trains = [c for c in commands.splitlines() if 'tools/train.py' in c]
    assert len(trains) == 2
    assert 'mulan_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice' \
        in trains[0]
    assert 'lens-afp_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-' \
        '9slice' in trains[1]
    for line in trains:
        assert f'{data}/DeepLesion' in line
        assert 'datasets.1.' not in line
    markers = _markers(work)
    assert len(markers) == 4
    assert tool.main(args) == 0
    assert 'tools/' not in capsys.readouterr().out
    assert _markers(work) == markers

    # Table III's "No mining" and Table IV's "Single dataset" are row (a):
    # only Table III's count of what (a) trained on runs
    assert tool.main(['lens/table3', '--rows', 'no_mining'] + args[4:]) == 0
    out = capsys.readouterr().out
    assert 'tools/train.py' not in out and 'eval_lens_3d' not in out
    assert out.count('tools/analysis_tools/lens_training_counts.py') == 1
    table = json.loads((work / 'table.json').read_text())
    _check_rows(table, {'no_mining': ('No mining (Table I row (a))', 36.8)})
    (row, ) = table['rows']
    assert row['ours']['lens/uncertain_2d_k']['mean'] == 0  # nothing mined
    assert row['ours']['lens/lesions_3d_k']['mean'] > 0
    assert tool.main(['lens/table4', '--rows', 'single'] + args[4:]) == 0
    assert 'tools/' not in capsys.readouterr().out
    _check_rows(json.loads((work / 'table.json').read_text()),
                {'single': ('Single dataset (Table I row (a))', 36.8)})
