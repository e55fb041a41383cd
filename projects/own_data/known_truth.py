# Copyright (c) mmlesion contributors. All rights reserved.
"""Your own data with a known truth: coarse synthetic CT (3 mm voxels) with
bright lesions of 11-32 mm at known places in a noisy body, converted,
planned for a CPU budget, trained, and tested on the held-out scans (the
FROC sensitivities printed; a detector that learned finds most lesions at
a few false positives per image, where boxes at random in the body would
hit few).

Each step is the documented command (``docs/your_own_data.md``)::

    python projects/own_data/known_truth.py --out work_dirs/known_truth \\
        --budget-minutes 30

Where the ImageNet weights cannot be downloaded, ``--no-pretrained``
trains from random weights (slower to learn).

``--steps make,convert,plan`` stops after planning (the planner's printout
for a coarse dataset); a step whose output is there is skipped, so the same
command goes on after a kill.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from mmlesion_cli import tool_parser

#: Scans: voxels (z, y, x), spacing (mm), body HU, lesion HU.
SHAPE = (40, 110, 110)
SPACING_MM = 3.
BODY_HU, LESION_HU, NOISE_HU = 0., 120., 15.
#: Lesion diameters (mm) drawn uniformly within.
DIAMETERS_MM = (11., 32.)


def make_scans(root: Path, scans: int = 12, seed: int = 0) -> int:
    """``root/images/s<i>.nii.gz`` and their label maps in
    ``root/labels``: a body ellipse in air, two or three ellipsoid lesions
    each, apart from each other; returns the number of lesions."""
    import SimpleITK as sitk
    rng = np.random.default_rng(seed)
    z, y, x = np.ogrid[:SHAPE[0], :SHAPE[1], :SHAPE[2]]
    body = ((y - 55) / 48.)**2 + ((x - 55) / 50.)**2 <= 1
    total = 0
    for folder in ('images', 'labels'):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i in range(scans):
        arr = np.where(body, BODY_HU, -1000.) + rng.normal(
            0, NOISE_HU, SHAPE) * body
        seg = np.zeros(SHAPE, np.uint8)
        centres = []
        for k in range(int(rng.integers(2, 4))):
            for _ in range(100):
                d = rng.uniform(*DIAMETERS_MM, 3) / SPACING_MM
                c = np.array([rng.uniform(8, SHAPE[0] - 8),
                              rng.uniform(25, 85), rng.uniform(25, 85)])
                if all(np.linalg.norm(c - o) > 12 for o in centres):
                    break
            centres.append(c)
            inside = sum(((g - cc) / (dd / 2))**2
                         for g, cc, dd in zip((z, y, x), c, d)) <= 1
            arr[inside] = LESION_HU + rng.normal(0, NOISE_HU, inside.sum())
            seg[inside] = k + 1
            total += 1
        for folder, values in (('images', arr.astype(np.int16)),
                               ('labels', seg)):
            img = sitk.GetImageFromArray(values)
            img.SetSpacing((SPACING_MM, ) * 3)
            sitk.WriteImage(img, str(root / folder / f's{i:02d}.nii.gz'))
    return total


#: The clone's root: the tools run from it.
ROOT = Path(__file__).resolve().parents[2]


def _run(*args) -> str:
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    if proc.returncode:
        sys.exit(proc.stdout[-4000:])
    return proc.stdout


def main() -> None:
    parser = tool_parser(__doc__)
    parser.add_argument(
        '--out', required=True,
        help='work folder: the scans, the converted dataset, the planned '
        'config and the training run')
    parser.add_argument('--scans', type=int, default=12,
                        help='synthetic scans made (a quarter held out)')
    parser.add_argument(
        '--budget-minutes', type=float, default=30.,
        help='CPU training minutes the plan is sized for')
    parser.add_argument(
        '--steps', default='make,convert,plan,train,test',
        help='comma-separated steps to run, in this order; a step whose '
        'output exists is skipped')
    parser.add_argument('--no-pretrained', action='store_true',
                        help='random backbone weights (no download)')
    parser.add_argument('--max-iters', type=int,
                        help='train this many iterations instead of the '
                        "plan's (a planned value set by --cfg-options; a "
                        'smoke run of the steps)')
    args = parser.parse_args()
    out, steps = Path(args.out).resolve(), args.steps.split(',')
    ann, export = out / 'volumes.json', out / '2d'
    config, work = out / 'planned.py', out / 'work'
    if 'make' in steps and not (out / 'labels').is_dir():
        print(f'{make_scans(out, args.scans)} lesions in {args.scans} scans')
    if 'convert' in steps and not ann.is_file():
        _run('tools/dataset_converters/convert_dataset.py', out / 'images',
             out / 'labels', '--out', ann, '--export-2d', export,
             '--val-fraction', 0, '--test-fraction', .25)
    if 'plan' in steps and not config.is_file():
        print(_run('tools/plan_dataset.py', ann, '--export-2d', export,
                   '--device', 'cpu', '--budget-minutes',
                   args.budget_minutes, '--out', config))
    if 'train' in steps and not (work / 'last_checkpoint').is_file():
        _run('tools/train.py', config, '--work-dir', work, '--cfg-options',
             'train_dataloader.num_workers=0',
             'train_dataloader.persistent_workers=False',
             *(['model.backbone.init_cfg=None'] if args.no_pretrained
               else []),
             *([f'max_iters={args.max_iters}'] if args.max_iters else []))
    if 'test' in steps:
        ckpt = (work / 'last_checkpoint').read_text().strip()
        metrics = work / 'metrics.json'
        _run('tools/test.py', config, ckpt, '--work-dir', work,
             '--metrics-out', metrics, '--cfg-options',
             'test_dataloader.num_workers=0',
             'test_dataloader.persistent_workers=False')
        found = json.loads(metrics.read_text())
        print({k: v for k, v in found.items() if k.startswith('froc/sens@')
               and '_' not in k})


if __name__ == '__main__':
    main()
