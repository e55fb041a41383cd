# Copyright (c) mmlesion contributors. All rights reserved.
"""Fingerprint a converted dataset and plan a detector config for it.

Reads the annotation file a dataset converter wrote (and the scans it
lists), writes the dataset's fingerprint beside it (``<name>.fingerprint.
json`` and ``.png``: spacings, sizes, orientations, HU inside and outside
lesions, lesion counts and sizes per split, a montage of lesion crops;
reused while the annotation file is unchanged), plans the detector
(:mod:`mmlesion.apps.own_data.dataset_plan`: 2.5D or 3D-AG, spacing, HU window,
slices, crop and batch within ``--gpu-mem-gb``, anchors, schedule), prints
every choice with its reason and writes ``--out``: a config inheriting one
of the repository's, each planned value under its reason.

A run killed at any moment resumes with the same command: the fingerprint
goes on from the scans it read (records in ``<name>.fingerprint.json.
parts/``), the picture is written before the JSON that says both are
done, and the temporary files a killed run left are removed at the start.

Example::

    python tools/dataset_converters/kits19.py data/kits19/data \\
        --out data/kits19/kits19_volumes.json --export-2d data/kits19_2d \\
        --test-fraction 0.2
    python tools/plan_dataset.py data/kits19/kits19_volumes.json \\
        --export-2d data/kits19_2d --gpu-mem-gb 24 --out configs_mine/kits.py
    python tools/train.py configs_mine/kits.py
"""
import argparse
import datetime
import math
import os
import os.path as osp
import sys
from typing import Optional, Sequence

from mmlesion_cli import tool_parser
from mmlesion_cli.common_args import (add_scan_check_arguments,
                                      scan_check_flags)

def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('ann_file', help="the converter's annotation file")
    parser.add_argument('--out', required=True, help='the config to write')
    parser.add_argument(
        '--gpu-mem-gb', type=float,
        help='GPU memory (GiB) for training: crop and batch are planned to '
        'fit it (estimated from measured figures); required but with '
        '--device cpu, where it is the memory to train in (default 8)')
    parser.add_argument(
        '--device', choices=('cuda', 'cpu'), default='cuda',
        help='where the training runs (cpu: a 2.5D ResNet-18 detector, '
        'batch at most 2, planned with --budget-minutes)')
    parser.add_argument(
        '--budget-minutes', type=float,
        help='plan the training to take about this long: iterations (and on '
        'a CPU the backbone) from a shipped step time (an estimate); with '
        '--device cpu CPU minutes of one free core (a busy machine takes '
        'longer: the plan prints the wall time at the load now); required '
        'with --device cpu')
    parser.add_argument(
        '--export-2d', metavar='DIR',
        help="the converter's 2D export (--export-2d of the conversion): "
        'the data of a 2.5D detector, and its training boxes')
    parser.add_argument(
        '--no-pretrained', action='store_true',
        help='2.5D: train the backbone from random weights (no ImageNet '
        'weights at hand, e.g. offline): every stage trained, BN in '
        'training mode')
    parser.add_argument('--family', choices=('2.5d', '3d'),
                        help='this detector family instead of the rule')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the intensity samples and anchor search')
    parser.add_argument(
        '--voxels-per-scan', type=int, default=20000,
        help='intensity samples per scan, inside and outside lesions each')
    parser.add_argument('--workers', type=int, default=1,
                        help='processes reading the scans for the fingerprint '
                        '(the same fingerprint for any number)')
    parser.add_argument('--refresh', action='store_true',
                        help='compute the fingerprint again although one of '
                        'this annotation file exists')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing --out')
    add_scan_check_arguments(parser)  # as the conversion was given them
    return parser.parse_args(argv)


def _check_path(out: str) -> str:
    """Where the config is loaded once before it is written (beside it)."""
    folder, name = osp.split(osp.abspath(out))
    return osp.join(folder, f'.{name}.check.py')


def _remove_stale_temporaries(args, stem: str) -> None:
    """Remove the temporary files a killed run of this command left: those
    of the fingerprint, its picture and the config, and the config's
    check file."""
    from mmlesion.utils.writing.atomic import remove_stale_temporaries_of
    check = _check_path(args.out)
    remove_stale_temporaries_of(stem + '.fingerprint.json',
                                stem + '.fingerprint.png', args.out, check)
    if osp.isfile(check):
        os.remove(check)


def _fingerprint(args, stem: str):
    """The fingerprint of ``args.ann_file``: read where one of the same
    file exists with its picture, else computed and written (the picture,
    then the JSON, then the records of a killed run removed)."""
    from mmlesion.apps.own_data.fingerprint import (
        FINGERPRINT_VERSION, DatasetFingerprint, FingerprintSettings,
        compute_fingerprint)
    from mmlesion.apps.own_data.scan_records import remove_records
    from mmlesion.datasets.volumes.scan_switches import ScanChecks
    from mmlesion.datasets.volumes.annotation_file import read_json_file
    from mmlesion.utils.checkpoints.checksum import sha256_file
    from mmlesion.utils.writing.atomic import atomic_write_json
    from mmlesion.apps.own_data.fingerprint_figure import draw_fingerprint
    path, picture = stem + '.fingerprint.json', stem + '.fingerprint.png'
    if osp.isfile(path) and osp.isfile(picture) and not args.refresh:
        fp = DatasetFingerprint.from_json(read_json_file(path, path), path)
        if fp.ann_sha256 == sha256_file(args.ann_file) and \
                fp.seed == args.seed and \
                fp.version == FINGERPRINT_VERSION and \
                fp.voxels_per_scan == args.voxels_per_scan:
            remove_records(path)  # of a run killed before it removed them
            print(f'Fingerprint: {path} (of this annotation file, reused)')
            return fp
    fp = compute_fingerprint(FingerprintSettings(
        args.ann_file, voxels_per_scan=args.voxels_per_scan, seed=args.seed,
        workers=args.workers, records_for=path,
        scan_checks=ScanChecks(**scan_check_flags(args))))
    # the picture (its crops are not in the JSON) before the JSON, whose
    # presence says both are done
    draw_fingerprint(fp, picture)
    atomic_write_json(path, fp.to_json(), indent=1)
    remove_records(path)  # a killed run resumes from them until here
    print(f'Fingerprint: {path} and {picture}')
    return fp


def _time_budget(args):
    """The :class:`TimeBudget` of ``--budget-minutes`` on ``--device``: the
    shipped step times (:mod:`mmlesion.apps.reproduce.estimate`), None without
    a budget."""
    if args.budget_minutes is None:
        return None
    from mmlesion.apps.own_data.plan_schedule import TimeBudget
    from mmlesion.apps.reproduce.estimate import (
        CPU_SECONDS_PER_TRAINING_IMAGE, CPU_SECONDS_PER_TRAINING_PATCH,
        SECONDS_PER_TRAINING_ITEM)
    if args.device == 'cpu':
        load = (os.getloadavg()[0], os.cpu_count() or 1)
        budgets = []
        for cpu, heads in ((CPU_SECONDS_PER_TRAINING_PATCH,
                            ' with 64-channel heads and 128 RoIs on one CPU '
                            'core, timed in the planned training'),
                           (CPU_SECONDS_PER_TRAINING_IMAGE, ' on one CPU core'
                            ', benchmark_cpu_train_step.py')):
            budgets.append(TimeBudget(
                args.budget_minutes, 'cpu', **cpu, source=(
                    f"{cpu['fixed_seconds']:.2f} s a training image + "
                    f"{cpu['seconds_per_pixel'] * 256**2:.2f} s per 256^2 "
                    f"px of it, Faster R-CNN R{cpu['backbone_depth']}-FPN"
                    f'{heads}'),
                load=load, patches=budgets[0] if budgets else None))
        return budgets[1]
    gpu = SECONDS_PER_TRAINING_ITEM['faster-rcnn']
    return TimeBudget(
        args.budget_minutes, 'cuda', 0., gpu / 512**2, 50,
        f'{gpu:g} s per 512^2 px image of Faster R-CNN R50-FPN on one '
        'H100, scaled by pixels (no fixed part measured on a GPU), '
        'benchmark_elixirnet.py')


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if osp.exists(args.out) and not args.overwrite:
        print(f'error: {args.out} exists; use --overwrite to replace it',
              file=sys.stderr)
        return 1
    if args.device == 'cpu' and args.budget_minutes is None:
        print('error: --device cpu needs --budget-minutes (e.g. 30 for a '
              'first look)', file=sys.stderr)
        return 2
    if args.gpu_mem_gb is None:
        if args.device == 'cuda':
            print('error: --gpu-mem-gb is required (the GPU memory to train '
                  'in, e.g. 24)', file=sys.stderr)
            return 2
        args.gpu_mem_gb = 8.
    if not (math.isfinite(args.gpu_mem_gb) and args.gpu_mem_gb > 0):
        print(f'error: --gpu-mem-gb must be > 0 (a number of GiB), got '
              f'{args.gpu_mem_gb:g}', file=sys.stderr)
        return 2
    if args.budget_minutes is not None and args.budget_minutes <= 0:
        print(f'error: --budget-minutes must be > 0, got '
              f'{args.budget_minutes:g}', file=sys.stderr)
        return 2
    if not args.out.endswith('.py'):
        print(f'error: --out {args.out} must be a .py config',
              file=sys.stderr)
        return 2
    from mmengine.config import Config

    from mmlesion.apps.own_data.dataset_plan import (PlanSettings,
                                                     plan_dataset,
                                                     read_export_facts)
    from mmlesion.apps.own_data.plan_config import (PlanConfigSettings,
                                                    format_plan_config)
    from mmlesion.apps.own_data.fingerprint import SPLIT_NAMES
    from mmlesion.datasets.volumes import load_annotation_file
    from mmlesion.apps.own_data.scan_records import unfinished_run
    from mmlesion.utils.writing.atomic import atomic_write_text
    unfinished = unfinished_run(args.ann_file)
    if unfinished:
        print(f'error: {args.ann_file}: its conversion did not finish '
              f'({unfinished} holds its records; its outputs may be '
              'partial): run the converter\'s command again (it resumes), '
              'then plan', file=sys.stderr)
        return 2
    stem = osp.splitext(args.ann_file)[0]
    _remove_stale_temporaries(args, stem)
    try:
        fp = _fingerprint(args, stem)
        facts = None
        if args.export_2d:
            dl_info = osp.join(args.export_2d, 'DL_info.csv')
            facts = read_export_facts(dl_info)
        plan = plan_dataset(PlanSettings(
            fp, args.gpu_mem_gb, family=args.family, seed=args.seed,
            time_budget=_time_budget(args),
            pretrained=not args.no_pretrained,
            **(dict(boxes_2d=facts.boxes_2d, lesions_2d=facts.lesions_2d,
                    train_images=facts.train_images,
                    context_mm=facts.context_mm) if facts else {})))
        if plan.family == '2.5d' and facts is None:
            raise ValueError(
                'a 2.5D detector reads the converter\'s 2D export: convert '
                'with --export-2d DIR and give --export-2d DIR here')
    except (ValueError, FileNotFoundError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(f'Plan for {args.ann_file} ({fp.splits["all"].num_scans} scans, '
          f'{fp.splits["all"].num_lesions} lesions):')
    for choice in plan.choices:
        print(f'  {choice.name} = {choice.value!r}\n      because '
              f'{choice.reason}')
    for note in plan.notes:
        print(f'note: {note}')
    out_dir = osp.dirname(osp.abspath(args.out))
    from mmlesion.utils.configs.lookup import repo_root
    # relative where the config is written inside the repository
    base = osp.join(str(repo_root()), 'configs', plan.base)
    if osp.commonpath([base, out_dir]) != osp.sep:
        base = osp.relpath(base, out_dir)
    now = datetime.datetime.now(datetime.timezone.utc)
    header = [f'Planned by tools/plan_dataset.py on {now:%Y-%m-%d %H:%M} UTC '
              f'from {args.ann_file} (sha256 {fp.ann_sha256[:16]}..., '
              f'fingerprint {stem}.fingerprint.json), --gpu-mem-gb '
              f'{args.gpu_mem_gb:g}'
              + (f', --device {args.device} --budget-minutes '
                 f'{args.budget_minutes:g}' if args.budget_minutes else '')
              + (' --no-pretrained' if args.no_pretrained else '')
              + '. Re-run the tool rather than edit it, or set a planned '
              'value for one run with --cfg-options NAME=VALUE.']
    if plan.family == '3d':
        volumes = load_annotation_file(args.ann_file).volumes
        scans = {name: [i for i, v in enumerate(volumes)
                        if SPLIT_NAMES.get(v.get('split', 1)) == name]
                 for name in SPLIT_NAMES.values()}
        settings = PlanConfigSettings(
            base, (osp.dirname(args.ann_file) or '.') + '/', header,
            'val' in fp.splits,
            osp.basename(args.ann_file), scans)
    else:
        settings = PlanConfigSettings(base, args.export_2d.rstrip('/') + '/',
                                      header, facts.has_val)
    text = format_plan_config(plan, settings)
    check = _check_path(args.out)
    try:  # it loads where it will stand, before it is written
        atomic_write_text(check, text)
        cfg = Config.fromfile(check)
        if plan.family == '2.5d':  # the anchors on the model's own levels
            from mmlesion.anchors.anchor_config import AnchorConfig
            from mmlesion.anchors.model_pyramid import check_anchor_pyramid
            gen = plan.value('anchor_generator')
            check_anchor_pyramid(cfg, AnchorConfig(
                gen['strides'], gen['base_sizes'], gen['ratios'],
                gen['scales']), args.out)
    finally:
        if osp.exists(check):
            os.remove(check)
    atomic_write_text(args.out, text)
    print(f'Config written to {args.out} (inherits {plan.base}); train it '
          f'with: python tools/train.py {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
