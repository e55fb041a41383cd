# Copyright (c) mmlesion contributors. All rights reserved.
"""Optimise RetinaNet anchors by differential evolution.

Zlocha et al., "Improving RetinaNet for CT Lesion Detection with Dense
Masks from Weak RECIST Labels" (MICCAI 2019), Sec. 2.1: two ratio values
(giving ratios r, 1/r besides 1:1, i.e. 5 ratios) and three scales are
searched so that every ground-truth box overlaps its best anchor as much as
possible (see :mod:`mmlesion.anchors.de_anchor_optimizer` for the
conventions and the objectives). Prints the mean best-anchor IoU and the
number (%) of boxes whose best anchor has IoU < 0.5 before and after (and
for the paper's anchors), the run time, and writes the ``anchor_generator``
config snippet (``--out``).

Boxes:

* ``CONFIG``: the dataset of ``{split}_dataloader`` (default ``val``, as
  the paper), built through the registry; each image's boxes are scaled by
  the resize its pipeline applies to that image size (``Resize``
  exactly; ``RandomResize``/``RandomChoiceResize`` at their nominal scale;
  see :func:`mmlesion.anchors.box_sources.pipeline_resize_factor`). The
  "before" anchors are the model's ``bbox_head.anchor_generator`` (or
  ``rpn_head``) and the pyramid (strides, sizes) is taken from it unless
  ``--pyramid``/``--strides``/``--sizes`` are given.
* ``--csv``: a DeepLesion ``DL_info.csv`` (native pixels, or as resized by
  ``--img-scale W H``); "before" = mmdet's RetinaNet anchors on the pyramid.

Example (the paper's setting)::

    python tools/analysis_tools/optimize_anchors.py \
        --csv ../shared/data/deeplesion/annotations/DL_info_val.csv \
        --objective focal --seed 0 --out work_dirs/anchors_dl_val.py
"""
import argparse
import os
import os.path as osp
import sys
import time
from typing import Optional, Sequence

from mmengine.config import DictAction


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmlesion.anchors.de_anchor_optimizer import (OBJECTIVES, PYRAMIDS)
    parser = argparse.ArgumentParser(
        description='Differential-evolution anchor optimisation '
        '(Zlocha et al. 2019, Sec. 2.1)')
    parser.add_argument('config', nargs='?', help='config file')
    parser.add_argument('--csv', help='DeepLesion DL_info.csv instead')
    parser.add_argument(
        '--split',
        default=None,
        help='config: dataloader to read (train/val/test, default val); '
        'csv: Train_Val_Test split to keep (default: all rows)')
    parser.add_argument(
        '--objective',
        default='focal',
        choices=OBJECTIVES,
        help='iou: 1 - mean best IoU; ce: mean -log IoU; focal: mean '
        '-(1 - IoU)^2 log IoU (default, as the authors\' tool)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--popsize', type=int, default=15, help='population multiplier')
    parser.add_argument(
        '--maxiter', type=int, default=1000, help='maximum generations')
    parser.add_argument(
        '--tol', type=float, default=0.01, help='relative tolerance')
    parser.add_argument(
        '--workers',
        type=int,
        default=1,
        help='1: one vectorised numpy evaluation per generation (fastest '
        'on a small machine); N > 1 or -1: process pool')
    parser.add_argument(
        '--pyramid',
        choices=sorted(PYRAMIDS),
        default=None,
        help='strides/sizes preset (default P3-P7, or the config\'s)')
    parser.add_argument(
        '--strides', type=int, nargs='+', help='level strides override')
    parser.add_argument(
        '--sizes', type=float, nargs='+', help='anchor sizes override')
    parser.add_argument(
        '--ratio-bounds',
        type=float,
        nargs='+',
        default=[1.0, 2.0, 2.0, 4.0],
        help='low high per free ratio (paper: 1 2 2 4)')
    parser.add_argument(
        '--num-scales', type=int, default=3, help='number of scales')
    parser.add_argument(
        '--scale-bounds',
        type=float,
        nargs=2,
        default=[0.4, 1.6],
        help='bounds of every scale (paper: 0.4 1.6)')
    parser.add_argument(
        '--img-scale',
        type=int,
        nargs=2,
        default=None,
        metavar=('W', 'H'),
        help='--csv: rescale each image as Resize(scale=(W, H), '
        'keep_ratio=True)')
    parser.add_argument(
        '--no-resize',
        action='store_true',
        help='config: ignore the pipeline\'s resize (original pixels)')
    parser.add_argument(
        '--skip-noisy',
        action='store_true',
        help='--csv: drop Possibly_noisy rows')
    parser.add_argument(
        '--decimals', type=int, default=4, help='decimals of the result')
    parser.add_argument(
        '--log-interval',
        type=int,
        default=10,
        help='log the best candidate every N generations (0: never)')
    parser.add_argument('--out', help='write the anchor_generator snippet')
    parser.add_argument(
        '--force', action='store_true', help='overwrite an existing --out')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default=None,
        help='override config settings, key=value (mmengine DictAction)')
    return parser.parse_args(argv)


def _row(name: str, stats) -> str:
    return (f'{name:<28} {stats.mean_iou:>8.4f} {stats.num_below:>8d} '
            f'{100 * stats.frac_below:>8.2f} % '
            f"{stats.objectives['focal']:>9.5f}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if (args.config is None) == (args.csv is None):
        print('error: give a config or --csv (one of them)', file=sys.stderr)
        return 2
    if args.out and osp.exists(args.out) and not args.force:
        print(
            f'error: {args.out} exists; use --force to overwrite it',
            file=sys.stderr)
        return 1
    if len(args.ratio_bounds) % 2:
        print('error: --ratio-bounds needs low high pairs', file=sys.stderr)
        return 2

    from mmengine.logging import MMLogger
    from mmlesion.anchors.box_sources import (anchor_config_from_model,
                                              boxes_from_config,
                                              boxes_from_dl_info)
    from mmlesion.anchors.de_anchor_optimizer import (PAPER_RATIOS,
                                                      PAPER_SCALES, PYRAMIDS,
                                                      AnchorConfig,
                                                      DEAnchorOptimizer,
                                                      boxes_to_wh,
                                                      evaluate_anchors,
                                                      format_anchor_snippet)
    MMLogger.get_instance('mmlesion_anchors', log_level='INFO')

    t0 = time.perf_counter()
    before = None
    if args.csv:
        split = args.split
        boxes = boxes_from_dl_info(
            args.csv,
            split=split,
            skip_noisy=args.skip_noisy,
            img_scale=tuple(args.img_scale) if args.img_scale else None)
        pixels = (f'resized as Resize(scale={tuple(args.img_scale)}, '
                  'keep_ratio=True)' if args.img_scale else 'native pixels')
        source = f'{args.csv} (split {split or "all"}, {pixels})'
    else:
        from mmengine.config import Config
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        split = args.split or 'val'
        boxes, info = boxes_from_config(
            cfg, split, apply_resize=not args.no_resize)
        before = anchor_config_from_model(cfg)
        source = (f'{args.config} {split}_dataloader ({info["dataset"]}, '
                  f'{info["num_images"]} images, resize factors '
                  f'{info["factors"][:4]}'
                  f'{" ..." if len(info["factors"]) > 4 else ""})')
    load_s = time.perf_counter() - t0

    preset = PYRAMIDS[args.pyramid or 'P3-P7']
    if before is not None and args.pyramid is None:
        strides, sizes = before.strides, before.sizes
    else:
        strides, sizes = preset['strides'], preset['sizes']
    strides = tuple(args.strides or strides)
    sizes = tuple(args.sizes or sizes)
    if len(strides) != len(sizes):
        print(
            f'error: {len(strides)} strides but {len(sizes)} sizes',
            file=sys.stderr)
        return 2
    if before is None or args.pyramid or args.strides or args.sizes:
        before_name = 'RetinaNet default'
        before = AnchorConfig.retinanet_default(strides=strides, sizes=sizes)
    else:
        before_name = 'config anchors'

    wh = boxes_to_wh(boxes)
    bounds = [(args.ratio_bounds[i], args.ratio_bounds[i + 1])
              for i in range(0, len(args.ratio_bounds), 2)]
    optimizer = DEAnchorOptimizer(
        sizes=sizes,
        strides=strides,
        objective=args.objective,
        ratio_bounds=bounds,
        num_scales=args.num_scales,
        scale_bounds=tuple(args.scale_bounds),
        popsize=args.popsize,
        maxiter=args.maxiter,
        tol=args.tol,
        seed=args.seed,
        workers=args.workers,
        decimals=args.decimals,
        log_interval=args.log_interval)
    print(f'Boxes: {len(wh)} from {source}; loaded in {load_s:.2f} s')
    print(f'Pyramid: strides {list(strides)}, anchor sizes '
          f'{[float(s) for s in sizes]}; objective {args.objective}, seed '
          f'{args.seed}, popsize {args.popsize}, bounds ratios {bounds} '
          f'scales {tuple(args.scale_bounds)}')
    cpu0 = time.process_time()
    result = optimizer.optimize(wh)
    cpu = time.process_time() - cpu0

    stats_before = evaluate_anchors(wh, before)
    paper = AnchorConfig(strides, sizes, PAPER_RATIOS, PAPER_SCALES)
    stats_paper = evaluate_anchors(wh, paper)
    print()
    print(f'{"anchors":<28} {"mean IoU":>8} {"IoU<0.5":>8} {"":>10} '
          f'{"focal obj":>9}')
    print(_row(f'before ({before_name})', stats_before))
    print(_row('paper (Zlocha et al.)', stats_paper))
    print(_row('after (optimised)', result.stats))
    print()
    ratios = ', '.join(f'{r:.4f}' for r in result.anchors.ratios)
    scales = ', '.join(f'{s:.4f}' for s in result.anchors.scales)
    print(f'Optimised ratios (h/w): [{ratios}]')
    print(f'Optimised scales: [{scales}] (x sizes {list(sizes)})')
    print(f'Search: {result.nit} generations, {result.nfev} candidates, '
          f'{result.time_s:.2f} s wall, {cpu:.2f} s CPU; {result.message}')

    header = [
        'Anchors optimised by tools/analysis_tools/optimize_anchors.py',
        '(differential evolution, Zlocha et al. 2019 Sec. 2.1)',
        f'boxes: {len(wh)} from {source}',
        f'objective {args.objective}, seed {args.seed}, popsize '
        f'{args.popsize}, {result.nit} generations, {result.time_s:.1f} s',
        f'before ({before_name}): {stats_before.summary()}',
        f'after: {result.stats.summary()}',
    ]
    snippet = format_anchor_snippet(result.anchors, header, args.decimals)
    if args.out:
        if osp.dirname(args.out):
            os.makedirs(osp.dirname(args.out), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(snippet)
        print(f'Snippet written to {args.out}')
    print()
    print(snippet)
    return 0


if __name__ == '__main__':
    sys.exit(main())
