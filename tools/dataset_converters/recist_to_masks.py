# Copyright (c) mmlesion contributors. All rights reserved.
"""Precompute the GrabCut masks of a whole split (RECIST -> dense masks).

Zlocha et al. 2019, Sec. 2.2: GrabCut runs once per lesion; caching the
masks keeps it out of the training loop. The masks are made exactly as the
training pipeline's ``RecistToMask`` would make them: from a config, the
``{split}_dataloader`` pipeline up to its ``RecistToMask`` and that
transform's arguments; from a DeepLesion CSV, the default loading steps and
``RecistToMask`` defaults (``--window`` etc. override either).

Output (format of :mod:`mmlesion.datasets.transforms.recist_grabcut`):
``OUT/meta.json`` with the mask parameters and one ``OUT/<key slice>.npz``
per key slice (``bboxes``, ``image_shape``, ``offsets``, ``mask_<i>``
crops). Use it with ``dict(type='RecistToMask', ..., cache_dir=OUT)``.
Masks of a release replica get its marker (``OUT/REPLICA.txt``).

Existing files are never overwritten without ``--force``: a run on an
existing cache with the same parameters only adds the missing key slices;
other parameters, or a non-empty folder that is not a cache, stop the run
(exit status 1). ``--force`` rewrites ``meta.json`` and every key slice of
the split (files of other key slices in the folder are left alone).

Examples::

    python tools/dataset_converters/recist_to_masks.py \
        configs/retinanet_lesion/CONFIG.py \
        --split train --out data/DeepLesion/recist_masks
    python tools/dataset_converters/recist_to_masks.py --csv \
        data/DeepLesion/annotations/DL_info_val.csv \
        --skip-missing --out work_dirs/recist_masks_val
"""
import argparse
import collections
import json
import os
import os.path as osp
import sys
import time
from typing import Optional, Sequence

import numpy as np
from mmengine.config import DictAction

from mmlesion_cli import tool_parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('config', nargs='?', help='config file')
    parser.add_argument('--csv', help='DeepLesion DL_info.csv instead')
    parser.add_argument('--img-dir', help='Images_png folder of --csv')
    parser.add_argument(
        '--split',
        default=None,
        help='dataloader (config: train/val/test, default train) or '
        'Train_Val_Test split of --csv (train/val/test, default all rows)')
    parser.add_argument(
        '--skip-missing',
        action='store_true',
        help='skip key slices whose PNG is missing (--csv)')
    parser.add_argument(
        '--drop-noisy',
        action='store_true',
        help='drop Possibly_noisy lesions (--csv; a config decides itself)')
    parser.add_argument('--out', required=True, help='cache folder')
    parser.add_argument(
        '--force',
        action='store_true',
        help='recompute everything and overwrite existing files')
    parser.add_argument(
        '--window', type=float, nargs=2, help='GrabCut HU window override')
    parser.add_argument(
        '--iterations', type=int, help='GrabCut iterations override')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default=None,
        help='override config settings, key=value (mmengine DictAction)')
    return parser.parse_args(argv)


def _check_out(out: str, params: dict, force: bool) -> None:
    """Refuse to touch a folder we did not make, or other parameters."""
    from mmlesion.datasets.transforms.recist_mask_cache import (
        _json_value, read_cache_params)
    if not osp.isdir(out) or not os.listdir(out) or force:
        return
    if not osp.isfile(osp.join(out, 'meta.json')):
        raise FileExistsError(
            f'{out} is not empty and is not a RECIST mask cache (no '
            'meta.json); choose another --out or use --force')
    stored = read_cache_params(out)
    mine = {k: _json_value(v) for k, v in params.items()}
    if stored != mine:
        raise FileExistsError(
            f'{out} holds masks made with other parameters '
            f'({stored} vs {mine}); use --force to rebuild it')


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    from mmlesion.datasets.transforms.recist_mask_source import (
        RecistSource, build_recist_source)
    from mmlesion.datasets.transforms.recist_mask_cache import (
        cache_file_name, write_cache_meta)
    from mmlesion.utils.reporting.progress import progress_bar
    cfg_options = args.cfg_options
    overrides = {}
    if args.window is not None:
        overrides['window'] = tuple(args.window)
    if args.iterations is not None:
        overrides['iterations'] = args.iterations
    split = args.split or ('train' if args.config else 'all')
    dataset, masker = build_recist_source(
        RecistSource(config=args.config, split=split, csv=args.csv,
                     img_dir=args.img_dir, skip_missing=args.skip_missing,
                     drop_noisy=args.drop_noisy, cfg_options=cfg_options),
        mask_overrides=overrides)
    try:
        _check_out(args.out, masker.params, args.force)
    except (FileExistsError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    write_cache_meta(args.out, masker.params)
    # masks of a release replica are synthetic too: the cache says so
    from mmlesion.apps.own_data.common import mark_replica_outputs
    mark_replica_outputs(
        [args.csv, args.img_dir, getattr(dataset, 'data_root', None),
         getattr(dataset, 'ann_file', None)], folders=[args.out],
        made_by='tools/dataset_converters/recist_to_masks.py')

    methods = collections.Counter()
    fractions = []
    written = skipped = 0
    start = time.perf_counter()
    bar = progress_bar(len(dataset), file=sys.stderr, label='masks')
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        path = osp.join(args.out, cache_file_name(info))
        if osp.exists(path) and not args.force:
            skipped += 1
            bar.update()
            continue
        crops, _, meth = masker.write_cache_file(dataset[i], args.out)
        written += 1
        for crop, method in zip(crops, meth):
            methods[method] += 1
            if crop.size:
                fractions.append(float(crop.mean()))
        bar.update()
    elapsed = time.perf_counter() - start
    print(file=sys.stderr)
    summary = dict(
        out=args.out,
        images=len(dataset),
        written=written,
        skipped_existing=skipped,
        lesions=int(sum(methods.values())),
        methods=dict(methods),
        seconds=round(elapsed, 2),
        params=masker.params)
    if fractions:
        q = np.percentile(fractions, [0, 5, 25, 50, 75, 95, 100])
        summary['mask_box_fraction_percentiles_0_5_25_50_75_95_100'] = [
            round(float(v), 3) for v in q
        ]
    print(f'{written} key slice(s) written, {skipped} already cached, '
          f"{summary['lesions']} lesion(s) {dict(methods)} in "
          f'{elapsed:.1f} s -> {args.out}')
    if fractions:
        print(
            'mask / box area fraction, percentiles 0/5/25/50/75/95/100: '
            f"{summary['mask_box_fraction_percentiles_0_5_25_50_75_95_100']}")
    print('summary json: ' + json.dumps(summary, default=str))
    return 0


if __name__ == '__main__':
    sys.exit(main())
