# Copyright (c) mmlesion contributors. All rights reserved.
"""Optimise the anchors of a detector config by differential evolution.

Zlocha et al., "Improving RetinaNet for CT Lesion Detection with Dense
Masks from Weak RECIST Labels" (MICCAI 2019), Sec. 2.1: two ratio values
(giving ratios r, 1/r besides 1:1, i.e. 5 ratios) and three scales are
searched so that every ground-truth box overlaps its best anchor as much as
possible (see :mod:`mmlesion.anchors.de_anchor_optimizer` for the
conventions and the objectives).

The tool takes the **target config** (the detector whose anchors are
optimised) and reads its anchor generator (``model.bbox_head`` or
``model.rpn_head``): strides, base sizes and octave settings. It builds the
model on PyTorch's meta device to measure the strides of the levels the
head really predicts on and **refuses a mismatch** (anchors for P3-P7 on a
P2-P6 model would put anchor centres beyond the image without any error in
mmdet). The search keeps the target's strides and sizes and tunes ratios and
scales; ``--out`` writes a config that inherits the target config and
replaces only its anchor generator, with the command, the box source
(path, SHA-256, count), the search settings and the before / after
statistics in its header. An existing ``--out`` is kept unless
``--overwrite``.

Boxes:

* default: the dataset of the target config's ``{split}_dataloader``
  (default ``val``, as the paper), built through the registry, each image's
  boxes scaled by the resizes of that dataloader's pipeline (``Resize``
  exactly; ``RandomResize``/``RandomChoiceResize`` at their nominal scale;
  see :func:`mmlesion.anchors.box_sources.pipeline_resize_factor`);
* ``--csv``: a DeepLesion ``DL_info.csv`` instead (all its rows, or the
  ``Train_Val_Test`` rows of ``--csv-split``), scaled by the same resizes
  of the target config's ``{split}_dataloader`` pipeline for each
  ``Image_size``.

Example (how ``retinanet-optanchors_vgg19_fpn_1xb4-adam-plateau-50e_deeplesion.py``
of ``configs/retinanet_lesion/`` was made)::

    cd configs/retinanet_lesion && python \
        ../../tools/analysis_tools/optimize_anchors.py \
        retinanet_vgg19_fpn_1xb4-adam-plateau-50e_deeplesion.py \
        --csv /path/to/DL_info_val.csv \
        --out retinanet-optanchors_vgg19_fpn_1xb4-adam-plateau-50e_deeplesion.py
"""
import argparse
import datetime
import hashlib
import os
import os.path as osp
import shlex
import sys
import textwrap
import time
from typing import Optional, Sequence

from mmengine.config import DictAction

from mmlesion_cli import tool_parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument(
        'config', help='target config (its anchor generator and pyramid)')
    parser.add_argument(
        '--csv', help='DeepLesion DL_info.csv as the box source instead of '
        'the config\'s dataset')
    parser.add_argument(
        '--split',
        default='val',
        help='dataloader of the config whose dataset (and pipeline resize) '
        'is used: train / val / test (val as in the paper)')
    parser.add_argument(
        '--csv-split',
        default=None,
        help='--csv: keep only this Train_Val_Test split (train / val / '
        'test; default: all rows)')
    parser.add_argument(
        '--objective',
        default='focal',
        choices=('iou', 'ce', 'focal'),  # OBJECTIVES of mmlesion.anchors
        help='iou: 1 - mean best IoU; ce: mean -log IoU; focal: mean '
        '-(1 - IoU)^2 log IoU (focal as in the authors\' tool)')
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
        '--no-resize',
        action='store_true',
        help='ignore the pipeline\'s resize (original pixels)')
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
    parser.add_argument(
        '--out',
        help='write a config inheriting the target config with the '
        'optimised anchors')
    parser.add_argument(
        '--overwrite', action='store_true', help='replace an existing --out')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default=None,
        help='override settings of the target config, key=value (mmengine '
        'DictAction; recorded in the written config\'s header only, so '
        'prefer editing the target)')
    return parser.parse_args(argv)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _base_path(target: str, out: str) -> str:
    """``_base_`` of the written config: the target relative to it (so the
    pair moves with the repository), absolute if they share no folder."""
    target, out_dir = osp.abspath(target), osp.dirname(osp.abspath(out))
    if osp.commonpath([target, out_dir]) == osp.sep:
        return target
    rel = osp.relpath(target, out_dir).replace(os.sep, '/')
    return rel if rel.startswith('.') else './' + rel


def _comment_lines(header: Sequence[str], command: str) -> list:
    """Header lines wrapped to 79 columns (the command with ``\\``)."""
    lines = []
    for line in header:
        lines += textwrap.wrap(line, 77, break_on_hyphens=False,
                               break_long_words=False) or ['']
    parts = textwrap.wrap(
        'python tools/analysis_tools/optimize_anchors.py ' + command,
        73, break_on_hyphens=False, break_long_words=False)
    lines.append('command (re-run it instead of editing this file):')
    lines += [f'  {p} \\' for p in parts[:-1]] + [f'  {parts[-1]}']
    return lines


def _row(name: str, stats) -> str:
    return (f'{name:<28} {stats.mean_iou:>8.4f} {stats.num_below:>8d} '
            f'{100 * stats.frac_below:>8.2f} % '
            f"{stats.objectives['focal']:>9.5f}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    from mmlesion.utils.writing.atomic import atomic_write
    command = ' '.join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    if args.out and osp.exists(args.out) and not args.overwrite:
        print(
            f'error: {args.out} exists; use --overwrite to replace it',
            file=sys.stderr)
        return 1
    if args.out and not args.out.endswith('.py'):
        print(f'error: --out {args.out} must be a .py config', file=sys.stderr)
        return 2
    if len(args.ratio_bounds) % 2:
        print('error: --ratio-bounds needs low high pairs', file=sys.stderr)
        return 2
    if args.csv and not osp.isfile(args.csv):
        print(f'error: --csv {args.csv} is not a file', file=sys.stderr)
        return 2

    from mmengine.config import Config
    from mmengine.logging import MMLogger

    from mmlesion.anchors.box_sources import (anchor_config_from_model,
                                              boxes_from_config,
                                              boxes_from_dl_info,
                                              dataset_pipeline)
    from mmlesion.anchors.de_anchor_optimizer import (PAPER_RATIOS,
                                                      PAPER_SCALES,
                                                      AnchorConfig,
                                                      DEAnchorOptimizer,
                                                      boxes_to_wh,
                                                      evaluate_anchors,
                                                      format_anchor_config)
    from mmlesion.anchors.model_pyramid import (anchor_head_key,
                                                check_anchor_pyramid,
                                                pyramid_name)
    MMLogger.get_instance('mmlesion_anchors', log_level='INFO')

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        from mmlesion.utils.configs.cfg_options import apply_cfg_options
        apply_cfg_options(cfg, args.cfg_options, source=args.config)
    try:
        head = anchor_head_key(cfg)
        before = anchor_config_from_model(cfg)
        check_anchor_pyramid(cfg, before, args.config)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    strides, sizes = before.strides, before.sizes
    print(f'Target: {args.config}: model.{head}.anchor_generator on '
          f'{pyramid_name(strides)} (strides {list(strides)}, checked against '
          f'the model\'s levels), anchor sizes {[float(s) for s in sizes]}')

    t0 = time.perf_counter()
    loader = f'{args.split}_dataloader'
    if args.csv:
        if loader not in cfg or cfg[loader] is None:
            print(f'error: {args.config} has no {loader} (its pipeline '
                  'gives the resize of the --csv boxes)', file=sys.stderr)
            return 2
        pipeline = None if args.no_resize else dataset_pipeline(
            cfg[loader]['dataset'])
        boxes = boxes_from_dl_info(
            args.csv,
            split=args.csv_split,
            skip_noisy=args.skip_noisy,
            pipeline=pipeline)
        pixels = ('native pixels' if args.no_resize else
                  f'resized as the {loader} pipeline')
        source = (f'{args.csv} (sha256 {_sha256(args.csv)[:16]}..., split '
                  f'{args.csv_split or "all"}, '
                  f'{"no noisy rows, " if args.skip_noisy else ""}{pixels})')
    else:
        boxes, info = boxes_from_config(
            cfg, args.split, apply_resize=not args.no_resize)
        dataset_cfg = cfg[loader]['dataset']
        ann = osp.join(
            dataset_cfg.get('data_root', '') or '',
            dataset_cfg.get('ann_file', '') or '')
        if osp.isfile(ann):
            ann = f'{ann}, sha256 {_sha256(ann)[:16]}...'
        source = (f'{args.config} {loader} ({info["dataset"]}, {ann}, '
                  f'{info["num_images"]} images, resize factors '
                  f'{info["factors"][:4]}'
                  f'{" ..." if len(info["factors"]) > 4 else ""})')
    load_s = time.perf_counter() - t0

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
    print(f'Search: objective {args.objective}, seed {args.seed}, popsize '
          f'{args.popsize}, bounds ratios {bounds} scales '
          f'{tuple(args.scale_bounds)}')
    cpu0 = time.process_time()
    result = optimizer.optimize(wh)
    cpu = time.process_time() - cpu0

    stats_before = evaluate_anchors(wh, before)
    paper = AnchorConfig(strides, sizes, PAPER_RATIOS, PAPER_SCALES)
    stats_paper = evaluate_anchors(wh, paper)
    print()
    print(f'{"anchors":<28} {"mean IoU":>8} {"IoU<0.5":>8} {"":>10} '
          f'{"focal obj":>9}')
    print(_row('before (config anchors)', stats_before))
    print(_row('paper (Zlocha et al.)', stats_paper))
    print(_row('after (optimised)', result.stats))
    print()
    ratios = ', '.join(f'{r:.4f}' for r in result.anchors.ratios)
    scales = ', '.join(f'{s:.4f}' for s in result.anchors.scales)
    print(f'Optimised ratios (h/w): [{ratios}]')
    print(f'Optimised scales: [{scales}] (x sizes {list(sizes)})')
    print(f'Search: {result.nit} generations, {result.nfev} candidates, '
          f'{result.time_s:.2f} s wall, {cpu:.2f} s CPU; {result.message}')

    if not args.out:
        return 0
    now = datetime.datetime.now(datetime.timezone.utc)
    header = [
        'Anchors of the target config below, optimised by differential',
        'evolution (Zlocha et al. 2019, Sec. 2.1). Generated by',
        'tools/analysis_tools/optimize_anchors.py on '
        f'{now:%Y-%m-%d %H:%M} UTC.',
        f'target: {args.config}, model.{head}.anchor_generator on '
        f'{pyramid_name(strides)} (strides {list(strides)})'
        + (f', --cfg-options {args.cfg_options}' if args.cfg_options else ''),
        f'boxes: {len(wh)} from {source}',
        f'search: objective {args.objective}, seed {args.seed}, popsize '
        f'{args.popsize}, {result.nit} generations, {result.time_s:.1f} s',
        f'before (target anchors): {stats_before.summary()}',
        f'paper anchors: {stats_paper.summary()}',
        f'after: {result.stats.summary()}',
    ]
    text = format_anchor_config(result.anchors,
                                _base_path(args.config, args.out), head,
                                _comment_lines(header, command),
                                args.decimals)
    if osp.dirname(args.out):
        os.makedirs(osp.dirname(args.out), exist_ok=True)
    with atomic_write(args.out) as f:
        f.write(text)
    written = Config.fromfile(args.out)
    check = AnchorConfig.from_generator_cfg(
        dict(written.model[head].anchor_generator))
    if check != result.anchors:
        raise RuntimeError(f'{args.out} does not reproduce the optimised '
                           f'anchors: {check} != {result.anchors}')
    print(f'Config written to {args.out} (inherits {args.config}):')
    print()
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
