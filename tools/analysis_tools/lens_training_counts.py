# Copyright (c) mmlesion contributors. All rights reserved.
"""What a LENS config trains on, counted as LENS Table III counts it (Yan et
al., TMI 2020): the 3D lesions (one positive slice of each is drawn per
epoch), the 2D lesion boxes, the 2D uncertain boxes (ignored in the loss)
and the training slices of one dataset of the config's training set, with
the config's mined annotations (``tools/lens_mine_annotations.py``) as the
config and ``--cfg-options`` name them.

Example (Table III, "+ Cross-slice")::

    python tools/analysis_tools/lens_training_counts.py \\
        configs/lens/lens-afp-mining-propagation_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice.py \\
        --out work_dirs/lens_counts.json

``--metrics FILE``: the counts are added to that JSON (e.g. the
``metrics.json`` of ``tools/analysis_tools/eval_lens_3d.py``), written to
``--out``: the file ``tools/reproduce.py lens/table3`` reads a row from.
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, Optional, Sequence

from mmlesion_cli import tool_parser
from mmlesion_cli.common_args import add_cfg_options_argument

#: the keys written, in Table III's column order
COUNT_KEYS = ('training_set/lesions_3d', 'training_set/boxes_2d',
              'training_set/uncertain_2d', 'training_set/slices')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('config', help='a LENS config (its training set)')
    parser.add_argument('--out', required=True, help='the JSON written')
    parser.add_argument('--metrics',
                        help='a JSON the counts are added to (default: the '
                        'counts alone)')
    parser.add_argument('--dataset-index', type=int, default=0,
                        help='the dataset counted, in the order of the '
                        "config's train_dataloader.dataset.datasets "
                        '(default: %(default)s, DeepLesion)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing --out file')
    add_cfg_options_argument(parser)
    return parser.parse_args(argv)


def training_set_counts(dataset, dataset_index: int = 0) -> Dict[str, int]:
    """Table III's counts of one dataset of a LENS training set.

    Args:
        dataset (LENSMultiDataset): the training set, built.
        dataset_index (int): the dataset counted.

    Returns:
        dict: :data:`COUNT_KEYS` -> count: the distinct 3D lesions its
        slices show (``positive_lesions``: an annotated lesion with the
        slices its boxes were propagated to, a mined lesion), its
        non-ignored and its ignored boxes, its slices (samples).

    Raises:
        ValueError: the dataset has no sample.
    """
    lesions, boxes, uncertain, slices = set(), 0, 0, 0
    for idx in range(len(dataset)):
        if dataset.dataset_id(idx) != dataset_index:
            continue
        slices += 1
        for ins in dataset.get_data_info(idx).get('instances', []):
            if ins.get('ignore_flag', 0):
                uncertain += 1
            else:
                boxes += 1
        lesions.update(dataset.positive_lesions(idx))
    if not slices:
        raise ValueError(f'dataset {dataset_index} of the training set has '
                         'no sample')
    return dict(zip(COUNT_KEYS, (len(lesions), boxes, uncertain, slices)))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if osp.exists(args.out) and not args.overwrite:
        print(f'error: {args.out} exists: pass --overwrite to replace it',
              file=sys.stderr)
        return 1
    import mmlesion  # noqa: F401  (registers components)
    from mmdet.registry import DATASETS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from mmlesion.utils.writing.atomic import atomic_write_json
    record = {}
    if args.metrics:
        if not osp.isfile(args.metrics):
            print(f'error: --metrics {args.metrics}: no such file',
                  file=sys.stderr)
            return 1
        with open(args.metrics) as f:
            record = json.load(f)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    train = cfg.train_dataloader.dataset
    if train.get('type') != 'LENSMultiDataset':
        print(f'error: {args.config}: the training set is a '
              f"{train.get('type')}, not a LENSMultiDataset",
              file=sys.stderr)
        return 1
    n = len(train.datasets)
    if not 0 <= args.dataset_index < n:
        print(f'error: --dataset-index {args.dataset_index}: the training '
              f'set has {n} dataset(s)', file=sys.stderr)
        return 1
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(train)
    try:
        counts = training_set_counts(dataset, args.dataset_index)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    record.update(counts)
    atomic_write_json(args.out, record, indent=1)
    name = train.dataset_names[args.dataset_index] if train.get(
        'dataset_names') else args.dataset_index
    print(f'{name}: ' + ', '.join(f'{k.split("/")[1]} {v}'
                                  for k, v in counts.items()) +
          f'; wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
