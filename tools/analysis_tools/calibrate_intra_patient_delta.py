# Copyright (c) mmlesion contributors. All rights reserved.
"""Calibrate delta of LENS's intra-patient lesion matching (Sec. V-B) for a
trained LENS model's embedding, and report what each mining strategy adds.

1. Embeds (``LENS.embed``) every lesion of the key slices of
   - ``--demo-root``: a demo set with follow-up studies (its
     ``demo_meta.json`` links a lesion across studies by ``lesion_id``; its
     unannotated lesions are embedded too, they are what matching mines),
   - ``--deeplesion-root`` with ``--dl-info`` CSVs: the real DeepLesion key
     slices whose PNG is present (same lesion across studies by a proxy:
     type, normalised location, size; :func:`deeplesion_proxy_same`),
   and measures the L2 distances of all pairs of one patient in different
   series (same-series pairs are excluded as the paper's matching does).
2. Chooses delta (:func:`choose_delta`: the largest with pair precision >=
   ``--min-precision``), prints it and plots both distributions
   (``delta_calibration.png``).
3. With ``--mine``: runs the three strategies on the demo set's training
   split with the chosen delta and with the paper's 0.15 and scores every
   strategy's boxes against the generator's truth (count, precision,
   recall of the unannotated and of the follow-up-missing lesions).

Writes ``delta_calibration.{json,png}`` into ``--out-dir``. CPU, minutes on
a demo set of ~100 key slices.

Example::

    python tools/analysis_tools/calibrate_intra_patient_delta.py \\
        CONFIG CHECKPOINT --demo-root data/demo_deeplesion \\
        --deeplesion-root data/DeepLesion \\
        --dl-info annotations/DL_info_val.csv annotations/DL_info_test.csv \\
        --out-dir work_dirs/delta --mine
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, Optional, Tuple

import numpy as np
from mmengine.config import Config

from mmlesion_cli import tool_parser

PAPER_DELTA = 0.15


def plot_distance_distributions(groups: Dict[str, Tuple[np.ndarray,
                                                        np.ndarray]],
                                deltas: Dict[str, float], path: str,
                                paper_delta: float = 0.15) -> str:
    """Histograms of same- vs different-lesion distances, one panel per
    data source, with the chosen delta and the paper's.

    Args:
        groups (dict): source name -> (same, diff) distances.
        deltas (dict): source name -> chosen delta.
        path (str): output PNG (written atomically).
        paper_delta (float): drawn for reference.

    Returns:
        str: ``path``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.6),
                             squeeze=False)
    for ax, (name, (same, diff)) in zip(axes[0], groups.items()):
        hi = max([1e-3] + [float(np.max(v)) for v in (same, diff) if len(v)])
        bins = np.linspace(0, hi * 1.02, 30)
        ax.hist(diff, bins=bins, alpha=0.6, density=True,
                label=f'different lesion (n={len(diff)})')
        ax.hist(same, bins=bins, alpha=0.6, density=True,
                label=f'same lesion (n={len(same)})')
        if name in deltas:
            ax.axvline(deltas[name], color='k', ls='-',
                       label=f'chosen delta {deltas[name]:.3f}')
        ax.axvline(paper_delta, color='r', ls='--',
                   label=f'paper delta {paper_delta}')
        ax.set_title(name)
        ax.set_xlabel('L2 embedding distance (other series, same patient)')
        ax.legend(fontsize=7)
    fig.tight_layout()
    from mmlesion.utils.writing.atomic import atomic_save_with
    atomic_save_with(path, lambda p: fig.savefig(p, dpi=110, format='png'))
    plt.close(fig)
    return path


def load_model(config: str, checkpoint: Optional[str]):
    """A LENS model in eval mode and its config (the config's
    initialisation without a checkpoint)."""
    from mmlesion.apis import DetectorLoadSettings, init_lesion_detector
    loaded = init_lesion_detector(
        config, checkpoint,
        DetectorLoadSettings(init_weights=not checkpoint))
    return loaded.cfg, loaded.model


def mining_report(model, cfg: Config, root: str, deltas: Dict[str, float],
                  max_offset: Optional[int]) -> dict:
    """The three strategies on the demo training split, per delta."""
    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.methods.lens.mining.calibration import key_slice_dataset
    import copy

    from mmlesion.methods.lens.mining import MiningSettings, mine_series
    from mmlesion.methods.lens.mining.demo_eval import evaluate_mining
    from mmlesion.methods.lens.mining.proposals import (
        collect_series_proposals, series_to_entries)
    ds = key_slice_dataset(cfg, root, 'DL_info.csv', 'train')
    experts = list(range(1, getattr(model, 'num_datasets', 1)))
    series = collect_series_proposals(model,
                                      ds,
                                      0,
                                      experts,
                                      max_offset,
                                      show_progress=False)
    meta = osp.join(root, 'demo_meta.json')
    out = {}
    for name, delta in deltas.items():
        run = copy.deepcopy(series)
        counts = mine_series(run, MiningSettings(
            dist_thr=delta, proposal_score_thr=0.05)).to_dict()
        per = evaluate_mining(series_to_entries(run), meta)['by_source']
        out[name] = dict(delta=delta,
                         counts={
                             k: v
                             for k, v in counts.items()
                             if k != 'embedding_distances'
                         },
                         per_strategy=per)
    return out


def parse_args(argv=None) -> argparse.Namespace:
    p = tool_parser(__doc__)
    p.add_argument('config', help='a LENS config (its test pipeline is used)')
    p.add_argument('checkpoint',
                   nargs='?',
                   default=None,
                   help='trained weights (none: random, plumbing only)')
    p.add_argument('--demo-root', help='demo set with demo_meta.json')
    p.add_argument('--deeplesion-root', help='DeepLesion-layout root')
    p.add_argument('--dl-info',
                   nargs='+',
                   default=['DL_info.csv'],
                   help='CSV files under --deeplesion-root')
    p.add_argument(
        '--split', choices=['train', 'val', 'test'], default=None,
        help='only the key slices of this split of --dl-info (train: the '
        'split mining runs on; default every row)')
    p.add_argument(
        '--min-precision',
        type=float,
        default=0.9,
        help='choose the largest delta whose matched pairs are at least this '
        'share same-lesion pairs')
    p.add_argument('--mine',
                   action='store_true',
                   help='run the strategies on the demo training split')
    p.add_argument('--max-offset',
                   type=int,
                   default=2,
                   help='mined slices: within this many of a key slice')
    p.add_argument('--out-dir',
                   required=True,
                   help='for the distance histograms and calibration.json')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.methods.lens.mining.calibration import (choose_delta,
                                                          demo_pairs)
    from mmlesion.methods.lens.mining.strategies import summarise
    if not (args.demo_root or args.deeplesion_root):
        print('error: give --demo-root and/or --deeplesion-root',
              file=sys.stderr)
        return 2
    if args.mine and not args.demo_root:
        print('error: --mine needs --demo-root', file=sys.stderr)
        return 2
    os.makedirs(args.out_dir, exist_ok=True)
    cfg, model = load_model(args.config, args.checkpoint)
    groups, info, calib = {}, {}, {}
    if args.demo_root:
        same, diff, info['demo'] = demo_pairs(model, cfg, args.demo_root)
        groups['demo (lesion_id)'] = (same, diff)
    if args.deeplesion_root:
        from mmlesion.methods.lens.mining.calibration import \
            deeplesion_pair_distances
        same, diff, info['deeplesion'] = deeplesion_pair_distances(
            model, cfg, args.deeplesion_root, args.dl_info, args.split)
        groups['DeepLesion key slices (proxy)'] = (same, diff)
    deltas = {}
    for name, (same, diff) in groups.items():
        entry = dict(same=summarise(same), different=summarise(diff))
        if len(same):
            entry['chosen'] = choose_delta(same, diff, args.min_precision)
            deltas[name] = entry['chosen']['delta']
        calib[name] = entry
        print(f'{name}: {json.dumps(entry)}')
    png = plot_distance_distributions(
        groups, deltas, osp.join(args.out_dir, 'delta_calibration.png'),
        PAPER_DELTA)
    result = dict(args=vars(args), sources=info, calibration=calib, png=png)
    demo_key = 'demo (lesion_id)'
    if demo_key in deltas:
        print(f'chosen delta (demo): {deltas[demo_key]}')
    if args.mine:
        runs = {'paper 0.15': PAPER_DELTA}
        if demo_key in deltas:
            runs['calibrated'] = deltas[demo_key]
        result['mining'] = mining_report(model, cfg, args.demo_root, runs,
                                         args.max_offset)
        for name, r in result['mining'].items():
            print(f'mining, delta {name} = {r["delta"]}: '
                  f'{json.dumps(r["per_strategy"])}')
    path = osp.join(args.out_dir, 'delta_calibration.json')
    from mmlesion.utils.writing.atomic import atomic_write_json
    atomic_write_json(path, result, indent=1, default=float)
    print(f'wrote {path} and {png}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
