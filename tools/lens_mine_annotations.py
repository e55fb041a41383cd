# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS steps 2 and 3 (Sec. III, V): run a trained LENS model on every stored
slice of the partially labelled training set, mine missing annotations and
uncertain lesions, write the file that DeepLesionMinedDataset reads.

Example (demo)::

    python tools/lens_mine_annotations.py \
        configs/lens/demo/lens-afp-multi-fusion_densenet-tiny_fpn_radam-12e_deeplesion-demo-2sets.py \
        work_dirs/lens_demo/epoch_12.pth \
        --out data/demo_deeplesion/lens_mined.json \
        --demo-meta data/demo_deeplesion/demo_meta.json

The dataset mined is dataset ``--dataset-index`` of the config's
``train_dataloader.dataset`` (a LENSMultiDataset), read with the config's
test pipeline; its expert gives the tracklets and embeddings, every other
expert (or ``--single-type-experts``) counts as a single-type expert.
"""
import argparse
import json
import os.path as osp
import sys
import time

from mmlesion_cli import tool_parser
from mmlesion_cli.package_data import package_json
from mmlesion_cli.common_args import (add_cfg_options_argument,
                                      add_trust_checkpoint_argument)


def _delta(text: str):
    """``--dist-thr``: 'calibrate' or a positive number."""
    if text == 'calibrate':
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'calibrate' or a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f'delta must be > 0, got {text}')
    return value


def parse_args(argv=None) -> argparse.Namespace:
    p = tool_parser(__doc__)
    shown = package_json('methods/lens/mining/tool_defaults.json')
    mining = shown['MiningSettings']
    p.add_argument('config', help='LENS config the model was trained with')
    p.add_argument('checkpoint', help='trained LENS checkpoint')
    p.add_argument('--out', required=True, help='mined annotation JSON')
    p.add_argument('--overwrite', action='store_true',
                   help='replace an existing --out file')
    p.add_argument('--dataset-index', type=int, default=0,
                   help='the partially labelled dataset to mine')
    p.add_argument('--single-type-experts', type=int, nargs='*',
                   help='experts for cross-dataset mining (default: all '
                   'others)')
    p.add_argument('--iou-thr', type=float, default=mining['iou_thr'],
                   help='theta')
    p.add_argument(
        '--dist-thr', type=_delta, default='calibrate',
        help='delta of the intra-patient matching (unused when '
        "--strategies leaves it out): a number, or 'calibrate': "
        'the largest embedding distance whose same-patient, '
        'other-series pairs of annotated lesions of the mined training '
        'split are at least --min-match-precision the same lesion (by '
        "location and size). The paper's 0.15 was set for LesaNet's "
        "embedding; this tool embeds with LENS's own RoI features")
    p.add_argument('--min-match-precision', type=float,
                   default=shown['calibrate_delta']['min_precision'],
                   help="pair precision of the calibrated delta (default "
                   "%(default)s: the paper's 90 %% of matched lesions true)")
    p.add_argument(
        '--matcher', choices=shown['MATCHERS'], default=mining['matcher'],
        help='what intra-patient matching compares: the RoI embedding '
        '(appearance), the normalised lesion location, or embedding, location '
        'and size together (mmlesion.methods.lens.mining.Matcher). '
        "'calibrate' calibrates the embedding only: give the others a "
        'number with --dist-thr (their same-lesion pairs on real data would '
        'be defined by the location proxy they compare)')
    p.add_argument('--score-thr', type=float, default=mining['score_thr'],
                   help='sigma')
    p.add_argument('--match-score-thr', type=float,
                   default=mining['match_score_thr'],
                   help='minimum tracklet score of an intra-patient match. '
                   'The paper names none: 0 takes every tracklet, its rule '
                   'as written. 0.5 was chosen on the synthetic demo data '
                   '(projects/lens/RESULTS.md), never on real data: try it '
                   'as an option, not as a real-data default')
    p.add_argument('--proposal-score-thr', type=float,
                   default=mining['proposal_score_thr'],
                   help='proposals below it are not linked into tracklets')
    p.add_argument('--max-offset', type=int, default=None,
                   help='only slices within this many slices of a key slice')
    p.add_argument(
        '--proposals-cache', default=None,
        help="a file of the model's proposals: read when an earlier run "
        'wrote it with the same config, options, checkpoint, experts and '
        '--max-offset (e.g. mining with other --strategies), else '
        'predicted and written there. Only a cache of this tool is '
        'replaced: naming any other file is refused')
    p.add_argument(
        '--strategies', nargs='+',
        default=mining['strategies'],
        help='mining strategies to run, in this order')
    p.add_argument('--demo-meta', default=None,
                   help="a demo set's demo_meta.json: report precision and "
                   'recall of the mined lesions against the lesions the '
                   'generator left unannotated')
    add_cfg_options_argument(p)
    add_trust_checkpoint_argument(p)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmlesion.methods.lens.experts import load_lens_and_train_set
    from mmlesion.methods.lens.mining import MiningSettings, mine_series
    from mmlesion.methods.lens.mining.demo_eval import evaluate_mining
    from mmlesion.datasets.deeplesion.mined_file import write_mined_file
    from mmlesion.methods.lens.mining.proposals import (
        collect_series_proposals, proposals_fingerprint, series_to_entries)
    from mmlesion.methods.lens.mining.proposals_cache import (
        ProposalsCache, cached_series_proposals)
    from mmlesion.utils.writing.work_dir_lock import WorkDirBusyError
    if osp.exists(args.out) and not args.overwrite:
        print(f'error: {args.out} exists: pass --overwrite to replace it',
              file=sys.stderr)
        return 1
    try:
        cache = args.proposals_cache and ProposalsCache(
            args.proposals_cache).claim()
    except (ValueError, WorkDirBusyError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    try:
        loaded = load_lens_and_train_set(
            args.config, args.checkpoint, args.dataset_index,
            args.cfg_options)
        cfg, model, dataset = loaded.cfg, loaded.model, loaded.dataset
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    calibration = None
    if args.dist_thr == 'calibrate' and args.matcher != 'appearance' and \
            'intra_patient' in args.strategies:
        print(f'error: --matcher {args.matcher} needs --dist-thr as a number'
              ' (calibrate is for the appearance embedding)',
              file=sys.stderr)
        return 1
    if 'intra_patient' not in args.strategies:
        args.dist_thr = None  # delta is the intra-patient matching's only
    elif args.dist_thr == 'calibrate':
        from mmlesion.methods.lens.mining.calibration import \
            calibrate_delta_on_training_split
        try:
            mined = cfg.train_dataloader.dataset.datasets[args.dataset_index]
            calibration = calibrate_delta_on_training_split(
                model, cfg, mined.data_root, mined.ann_file,
                args.min_match_precision)
        except ValueError as err:
            print(f'error: {err}', file=sys.stderr)
            return 1
        args.dist_thr = calibration['delta']
        print(f"delta calibrated: {args.dist_thr} (pair precision "
              f"{calibration['precision']}, recall {calibration['recall']}, "
              f"{calibration['n_same']} same / {calibration['n_diff']} "
              f"different pairs; {calibration['source']})")
    n = len(cfg.train_dataloader.dataset.datasets)
    singles = args.single_type_experts
    if singles is None:
        singles = [i for i in range(n) if i != args.dataset_index]
    start = time.perf_counter()
    print(f'collecting proposals of experts {[args.dataset_index]} + '
          f'{singles} on {len(dataset)} key slices\' series')
    try:
        series = cached_series_proposals(
            cache, proposals_fingerprint(
                cfg, args.checkpoint, [args.dataset_index, *singles],
                args.max_offset),
            lambda: collect_series_proposals(
                model, dataset, args.dataset_index, singles,
                args.max_offset))
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    counts = mine_series(series, MiningSettings(
        args.iou_thr, args.dist_thr, args.score_thr,
        args.proposal_score_thr, args.match_score_thr,
        tuple(args.strategies), args.matcher)).to_dict()
    entries = series_to_entries(series)
    meta = dict(
        config=osp.abspath(args.config),
        checkpoint=osp.abspath(args.checkpoint),
        dataset_index=args.dataset_index,
        single_type_experts=singles,
        iou_thr=args.iou_thr,
        dist_thr=args.dist_thr,
        dist_thr_calibration=calibration,
        score_thr=args.score_thr,
        match_score_thr=args.match_score_thr,
        matcher=args.matcher,
        strategies=args.strategies,
        counts=counts,
        embedding='L2-normalised RoI features after the shared FCs of '
        'LENS (substitute for LesaNet)')
    if args.demo_meta:
        meta['demo_evaluation'] = evaluate_mining(entries, args.demo_meta)
    write_mined_file(args.out, entries, meta, overwrite=args.overwrite)
    print(json.dumps(dict(counts=counts,
                          slices=len(entries),
                          demo_evaluation=meta.get('demo_evaluation'),
                          seconds=round(time.perf_counter() - start, 1),
                          out=args.out), indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
