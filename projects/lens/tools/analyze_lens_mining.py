# Copyright (c) mmlesion contributors. All rights reserved.
"""How many lesions each LENS mining strategy adds, and at what precision,
on a finished LENS study (``tools/lens_study.py``; LENS Sec. V).

For every seed, the mining of row (d) is re-run as the study ran it: the
proposals of row (b)'s model with both experts fused (the study's
``SOURCE_ROW['d']``) on dataset 0's training series, the three strategies
with the delta stored in ``d/seed_S/mining.json`` and proposals >= 0.05.
The mined boxes are scored against the synthetic set's complete truth
(``data/demo_partial/demo_meta.json``) per strategy, per slice distance
from the annotated key slice (propagation), per embedding-distance bin
(intra-patient matching), and over a sweep of delta and of a minimum
tracklet score (:func:`projects.lens.mining_breakdown.mining_breakdown`).

Proposals are stored in ``--out-dir`` (``proposals_seed{S}.pkl``) and
reused by a later call (``--recompute`` collects them again: about a minute
per seed on one CPU core). Only ``--work-dir`` is read and only
``--out-dir`` is written; a missing input is named in the error.

Writes ``lens_mining_breakdown.json`` and ``lens_mining_delta_sweep.png``
(precision / recall of the unannotated lesions vs delta) into
``--out-dir`` (default ``WORK_DIR/mining_breakdown``) and prints the tables.

Example::

    python projects/lens/tools/analyze_lens_mining.py \\
        --work-dir work_dirs/lens_study --seeds 0 1 2
"""

# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[3])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
import argparse
import json
import os.path as osp
import pickle
import sys
import time
from typing import Dict, List, Optional, Sequence

from mmlesion_cli import tool_parser

COUNT_KEYS = ('tracklets', 'propagation', 'intra_patient', 'cross_dataset')


def _need(path: str, what: str) -> str:
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} is missing ({what})')
    return path


def study_inputs(work_dir: str, seed: int) -> dict:
    """Paths and stored results of one seed of a LENS study folder.

    Returns:
        dict: ``meta`` (demo_meta.json), ``mining`` (row d's mining.json,
        loaded), ``checkpoint`` (row b's last checkpoint, looked up in its
        row folder), ``settings`` (the study's demo settings, loaded),
        ``partial`` and ``lung`` (the generated sets).

    Raises:
        FileNotFoundError: naming the first missing file.
    """
    from projects.lens.lens_study import SOURCE_ROW
    data = osp.join(work_dir, 'data')
    meta = _need(osp.join(data, 'demo_partial', 'demo_meta.json'),
                 'the study data\'s truth')
    with open(_need(osp.join(work_dir, 'd', f'seed_{seed}', 'mining.json'),
                    f'row d, seed {seed}: run the study first')) as f:
        mining = json.load(f)
    with open(_need(osp.join(work_dir, 'lens_study.json'),
                    'the study result with its settings')) as f:
        settings = json.load(f)['demo_settings']
    row_dir = osp.join(work_dir, SOURCE_ROW['d'], f'seed_{seed}')
    with open(_need(osp.join(row_dir, 'last_checkpoint'),
                    f'row {SOURCE_ROW["d"]}, seed {seed}')) as f:
        name = osp.basename(f.read().strip())
    return dict(meta=meta, mining=mining, settings=settings,
                checkpoint=osp.join(row_dir, name),
                partial=osp.join(data, 'demo_partial') + '/',
                lung=osp.join(data, 'demo_lung') + '/')


def collect_proposals(inputs: dict, seed: int, out_dir: str) -> list:
    """Row (b)'s model, both experts fused, on dataset 0's training series
    (as ``LENSStudy._row_d``)."""
    from projects.lens.lens_demo import _DEMO_ROOTS, demo_row_config
    from projects.lens.lens_demo_mining import demo_mining_series
    from projects.lens.lens_study import _load_model
    s = inputs['settings']
    _need(inputs['checkpoint'], f'row b, seed {seed}')
    roots = {k: inputs[v] for k, v in _DEMO_ROOTS.items()}
    cfg = demo_row_config('row_bc', out_dir, roots, s['epochs'], seed)
    model = _load_model(cfg, inputs['checkpoint'])
    model.test_cfg.expert_fusion.experts = None
    return demo_mining_series(model, cfg, s['mining_max_offset'])


def load_or_collect(inputs: dict, seed: int, out_dir: str,
                    recompute: bool) -> tuple:
    """Stored proposals of ``out_dir`` or freshly collected (and stored).

    Returns:
        tuple: (list[SeriesMining], 'stored' or 'collected').
    """
    from mmlesion.utils.writing.atomic import atomic_write_bytes
    path = osp.join(out_dir, f'proposals_seed{seed}.pkl')
    if osp.isfile(path) and not recompute:
        from mmlesion.methods.lens.mining.strategies import (SeriesMining,
                                                SliceProposals, Tracklet)
        from mmlesion.utils.checkpoints.results_pickle import load_allow_listed_pickle
        return load_allow_listed_pickle(
            path, (SeriesMining, SliceProposals, Tracklet),
            'stored proposals hold only the mining data classes, arrays and '
            'plain containers (use --recompute)'), 'stored'
    series = collect_proposals(inputs, seed, out_dir)
    atomic_write_bytes(path, pickle.dumps(series))
    return series, 'collected'


def analyse_seed(inputs: dict, series: list, deltas: Sequence[float],
                 min_scores: Sequence[float],
                 bins: Sequence[float]) -> dict:
    """Mine as the study did and break the result down."""
    from projects.lens.lens_demo_mining import PROPOSAL_SCORE_THR
    from mmlesion.methods.lens.mining import MiningSettings, mine_series
    from mmlesion.methods.lens.mining.demo_eval import load_demo_lesions
    from projects.lens.mining_breakdown import mining_breakdown
    delta = float(inputs['mining']['delta']['delta'])
    counts = mine_series(series, MiningSettings(
        dist_thr=delta, proposal_score_thr=PROPOSAL_SCORE_THR,
        match_score_thr=float(inputs['mining'].get('match_score_thr',
                                                   0.)))).to_dict()
    stored = inputs['mining'].get('counts', {})
    out = mining_breakdown(series, load_demo_lesions(inputs['meta']), delta,
                           deltas, min_scores, bins)
    out['counts'] = {k: counts[k] for k in COUNT_KEYS}
    out['reproduces_stored_counts'] = all(
        stored.get(k) == counts[k] for k in COUNT_KEYS)
    return out


def _fmt(v) -> str:
    if v is None:
        return '-'
    if isinstance(v, float):
        return f'{v:.2f}' if abs(v) < 10 else f'{v:.0f}'
    return str(v)


def markdown(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A markdown table (None as '-', floats to 2 decimals)."""
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(_fmt(v) for v in r) + ' |' for r in rows]
    return '\n'.join(lines)


def _frac(d: dict, tp: str = 'true_boxes', n: str = 'boxes') -> str:
    return f'{d[tp]}/{d[n]}'


def format_tables(results: Dict[int, dict]) -> str:
    """The four tables of the breakdown (every seed)."""
    strat, prop, intra, sweep = [], [], [], []
    for seed, r in results.items():
        for k, v in list(r['per_strategy'].items()) + [('mined (1+2)',
                                                          r['mined'])]:
            strat.append((seed, r['dist_thr'], k, _frac(v), v['precision'],
                          v['unannotated_found'], v['recall_unannotated'],
                          v['followup_recall']))
        for v in r['propagation_by_distance']:
            per = ' '.join(f'{iv["interval"]:g}mm:{_frac(iv)}'
                           for iv in v['by_interval'])
            prop.append((seed, v['key_distance'], _frac(v), v['precision'],
                         per))
        for v in r['intra_patient_by_distance']:
            if v['tracklets']:
                intra.append((seed, f'[{v["low"]:g}, {v["high"]:g})',
                              v['tracklets'], v['candidate_boxes'],
                              v['candidate_precision'], v['matched_boxes'],
                              v['matched_precision']))
        for v in r['delta_sweep']:
            mark = ' (run)' if v['delta'] == r['dist_thr'] else ''
            sweep.append((seed, f'{v["delta"]:.4g}{mark}', v['min_score'],
                          v['boxes'], v['precision'], v['recall_unannotated'],
                          v['followup_recall'], v['intra_tracklets'],
                          v['intra_boxes'], v['intra_precision']))
    return '\n\n'.join([
        'Per strategy (cross_dataset: uncertain boxes, ignored in the loss; '
        'found = unannotated lesions hit):\n' + markdown(
            ('seed', 'delta', 'strategy', 'true/boxes', 'precision',
             'found', 'recall unann.', 'recall follow-up missing'), strat),
        'Propagation by slice distance from the matched key slice:\n' +
        markdown(('seed', 'distance', 'true/boxes', 'precision',
                  'by slice interval'), prop),
        'Intra-patient matching by embedding distance (all considered '
        'tracklets; matched: distance < the run\'s delta):\n' + markdown(
            ('seed', 'distance', 'tracklets', 'boxes', 'precision',
             'matched boxes', 'matched precision'), intra),
        'Delta sweep (mined = propagation + intra-patient):\n' + markdown(
            ('seed', 'delta', 'min tracklet score', 'boxes', 'precision',
             'recall unann.', 'recall follow-up missing', 'intra tracklets',
             'intra boxes', 'intra precision'), sweep)
    ])


def plot_sweep(results: Dict[int, dict], path: str,
               paper_delta: float) -> str:
    """Precision and unannotated recall of the mined boxes vs delta (no
    minimum tracklet score), one line per seed; written atomically."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mmlesion.utils.writing.atomic import atomic_save_with
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for seed, r in results.items():
        rows = [v for v in r['delta_sweep'] if v['min_score'] == 0.]
        x = [v['delta'] for v in rows]
        for ax, key in zip(axes, ('precision', 'recall_unannotated')):
            line, = ax.plot(x, [v[key] for v in rows], 'o-', ms=3,
                            label=f'seed {seed}')
            ax.axvline(r['dist_thr'], color=line.get_color(), ls=':')
    for ax, name in zip(axes, ('precision of mined boxes',
                               'recall of unannotated lesions')):
        ax.axvline(paper_delta, color='r', ls='--',
                   label=f'paper delta {paper_delta}')
        ax.set_xlabel('delta (dotted: calibrated, per seed)')
        ax.set_title(name)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_save_with(path, lambda p: fig.savefig(p, dpi=100, format='png'))
    plt.close(fig)
    return path


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = tool_parser(__doc__)
    p.add_argument('--work-dir', required=True,
                   help='a LENS study folder (rows b and d run)')
    p.add_argument('--seeds', type=int, nargs='+', default=[0],
                   help='study seeds to analyse')
    p.add_argument('--out-dir',
                   help='outputs and stored proposals (default: '
                   'WORK_DIR/mining_breakdown)')
    p.add_argument('--recompute', action='store_true',
                   help='collect the proposals again even when stored')
    p.add_argument('--deltas', type=float, nargs='+',
                   help='deltas of the sweep (the calibrated one is added; '
                   'default: mining_breakdown.SWEEP_DELTAS, 0.05..0.5)')
    p.add_argument('--min-scores', type=float, nargs='+', default=[0., 0.5],
                   help='minimum tracklet scores of the sweep')
    p.add_argument('--distance-bins', type=float, nargs='+',
                   help='edges of the embedding-distance bins (default: '
                   'mining_breakdown.DISTANCE_BINS, 0..2)')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    start = time.time()
    args = parse_args(argv)
    out_dir = args.out_dir or osp.join(args.work_dir, 'mining_breakdown')
    import mmlesion  # noqa: F401  (registers components)
    from projects.lens.lens_demo_mining import (PAPER_DELTA,
                                                PROPOSAL_SCORE_THR)
    from projects.lens.mining_breakdown import DISTANCE_BINS, SWEEP_DELTAS
    from mmlesion.utils.writing.atomic import atomic_write_json
    deltas = args.deltas or SWEEP_DELTAS
    bins = args.distance_bins or DISTANCE_BINS
    results, sources = {}, {}
    try:
        inputs = {s: study_inputs(args.work_dir, s) for s in args.seeds}
        for seed in args.seeds:
            series, sources[seed] = load_or_collect(inputs[seed], seed,
                                                    out_dir, args.recompute)
            results[seed] = analyse_seed(inputs[seed], series, deltas,
                                         args.min_scores, bins)
            print(f'seed {seed}: proposals {sources[seed]}, {len(series)} '
                  f'series, counts {results[seed]["counts"]} (reproduce '
                  f'mining.json: {results[seed]["reproduces_stored_counts"]})')
    except FileNotFoundError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(format_tables(results))
    path = osp.join(out_dir, 'lens_mining_breakdown.json')
    atomic_write_json(path, dict(
        work_dir=args.work_dir, seeds=args.seeds, proposals=sources,
        proposal_score_thr=PROPOSAL_SCORE_THR, paper_delta=PAPER_DELTA,
        results=results), indent=1, default=float)
    png = plot_sweep(results,
                     osp.join(out_dir, 'lens_mining_delta_sweep.png'),
                     PAPER_DELTA)
    print(f'wrote {path} and {png} ({time.time() - start:.0f} s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
