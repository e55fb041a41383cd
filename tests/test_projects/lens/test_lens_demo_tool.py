# Copyright (c) mmlesion contributors. All rights reserved.
"""projects/lens/tools/lens_demo.py end to end with --quick (tiny sizes): every row of the
table is written with finite numbers, the work dir is protected."""
import importlib.util
import json
import math

from projects.lens.lens_demo import ROWS
from mmlesion.testing import repo_root


def _tool():
    spec = importlib.util.spec_from_file_location(
        'lens_demo_tool', repo_root() / 'projects' / 'lens' / 'tools' / 'lens_demo.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_lens_demo_quick_end_to_end(tmp_path):
    tool = _tool()
    work = tmp_path / 'demo'
    assert tool.main(['--work-dir', str(work), '--quick']) == 0
    res = json.loads((work / 'lens_demo.json').read_text())
    assert list(res['rows']) == list(ROWS)
    for name, row in res['rows'].items():
        if row is None:  # only (e), when its FPR network was not trained
            assert name == ROWS[5] and not res['fpr']['trained']
            assert name in res['not_run']
            continue
        keys = [k for k in row if k.startswith('sens@')]
        assert len(keys) == 7, name
        for k in keys + ['average']:
            assert math.isfinite(row[k]) and 0 <= row[k] <= 1, (name, k)
        assert row['lesions'] > 0
    # the complete truth has the unannotated lesions too
    assert res['mining']['demo_evaluation']['series'] > 0
    # delta calibrated on the (c) model (tiny sets: maybe no same-lesion
    # pair, then the paper's value, said so)
    assert res['mining']['delta']['source'] in (
        'calibrated', 'paper (no same-lesion pair)')
    assert set(res['fpr']['counts']) == {'tp', 'fp', 'unused'}
    md = (work / 'lens_demo.md').read_text()
    assert all(f'| {r} |' in md for r in ROWS)
    assert (work / 'lens_demo.png').stat().st_size > 1000
    assert (work / 'row_d' / 'config.py').is_file()
    # an earlier run is not replaced without --overwrite
    stamp = (work / 'lens_demo.json').stat().st_mtime_ns
    assert tool.main(['--work-dir', str(work), '--quick']) == 1
    assert (work / 'lens_demo.json').stat().st_mtime_ns == stamp


def test_setting_options_cover_the_settings():
    """The tool declares the demo sizes itself (its --help imports no
    torch); every LENSDemoSettings field but max_train_iters is there, with
    the field's type, and a given option reaches the settings."""
    from dataclasses import fields

    from projects.lens.lens_demo import LENSDemoSettings
    tool = _tool()
    names = {f.name for f in fields(LENSDemoSettings)} - {'max_train_iters'}
    assert set(tool.SETTING_OPTIONS) == names
    defaults = LENSDemoSettings()
    for name, (typ, _) in tool.SETTING_OPTIONS.items():
        value = getattr(defaults, name)
        assert value is None or isinstance(value, typ), name
    args = tool.parse_args(['--num-train', '7', '--dist-thr', '0.2'])
    assert (args.num_train, args.dist_thr, args.epochs) == (7, 0.2, None)
    from projects.lens.lens_study import STUDY_ROWS
    assert tuple(STUDY_ROWS) == tool.STUDY_ROW_NAMES


def test_lens_demo_study_mode_quick(tmp_path):
    """--seeds: the rows as a study on the shared runner (two seeds of rows
    b and c), the report with the paired effect; a second call reuses."""
    tool = _tool()
    work = tmp_path / 'study'
    args = ['--work-dir', str(work), '--quick', '--seeds', '0', '1',
            '--rows', 'b', 'c']
    assert tool.main(args) == 0
    summary = json.loads((work / 'lens_study.json').read_text())
    assert set(summary['rows']) == {ROWS[2], ROWS[3]}
    assert summary['per_seed'][ROWS[3]].keys() == {'0', '1'}
    assert summary['not_run'][ROWS[0]] == {'0': 'not run', '1': 'not run'}
    for seed in ('0', '1'):
        row = summary['per_seed'][ROWS[2]][seed]
        assert 0 <= row['average'] <= 1 and row['lesions'] > 0
        assert (work / 'b' / f'seed_{seed}' / 'result.json').is_file()
    # (c) is (b)'s model with fusion: it was not trained again
    assert not (work / 'c' / 'seed_0' / 'last_checkpoint').exists()
    effects = (work / 'lens_study_effects.md').read_text()
    assert '| b -> c | 2 |' in effects
    assert (work / 'lens_study_froc.png').stat().st_size > 1000
    stamp = (work / 'b' / 'seed_0' / 'result.json').stat().st_mtime_ns
    assert tool.main(args) == 0  # resumed: everything reused
    assert (work / 'b' / 'seed_0' / 'result.json').stat().st_mtime_ns == stamp
    assert tool.main(['--work-dir', str(work), '--rows', 'b']) == 2
