# Copyright (c) mmlesion contributors. All rights reserved.
"""Your own data with a known truth: coarse synthetic CT (3 mm voxels) of
patients with two studies each, bright lesions of 11-32 mm at known places
in a noisy body, converted (patients kept on one side, a validation
split), planned for a CPU budget, trained, and tested on the held-out
patients: the FROC sensitivities of the detector printed beside those of
chance (:func:`chance_froc`: boxes of the lesion sizes at random places in
the body of the same test key slices, through the same FROC).

Each step is the documented command (``docs/your_own_data.md``)::

    python projects/own_data/known_truth.py --out work_dirs/known_truth \\
        --budget-minutes 30

Where the ImageNet weights cannot be downloaded, ``--no-pretrained``
plans for random weights (every stage trained, BN in training mode).

``--annotations boxes`` gives the converter the lesions as a box CSV in
world millimetres (:func:`write_box_csv`, LUNA16's centre and diameter)
instead of the label maps; ``--annotations recist`` as a clinic's RECIST
sheet (``real_anatomy.write_recist_sheet``: its own headers, read with
``--columns``, the measured slice and the patient).

``--anatomy real`` puts lesions of 20-80 HU contrast into a real CT scan
(``projects/own_data/real_anatomy.py``: its "patients" are distinct
stretches of one real scan, its lesions hyper- or hypodense, one touching
pair a scan; the measured contrast is printed) instead of the easy scene
(bright lesions in a uniform noisy body), converted with ``--instances``.

``--steps make,convert,plan`` stops after planning (the planner's printout
for a coarse dataset); a step whose output is there is skipped, so the same
command goes on after a kill.

The last step, ``scan3d``, judges whole-scan output as lesions in 3D
(:func:`whole_scan_3d`): the per-scan operating point is chosen on the
validation patients' scans (``tools/eval_whole_scan.py --calibrate``),
then the held-out patients' scans are detected whole and their findings
matched to the planted lesions (3D IoBB >= 0.3), beside chance
(:func:`chance_scan_findings`); ``OUT/whole_scan_3d.json`` holds
``findings_per_lesion`` (at the validated operating point of 4 false
findings per scan, as ``infer_volume`` keeps them),
``sensitivity_at_fp_per_scan`` and ``chance_at_fp_per_scan``.
"""
import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Sequence, Tuple

import numpy as np

from mmlesion_cli import tool_parser

@dataclass(frozen=True)
class SyntheticSet:
    """A synthetic own-data set: ``patients`` patients of two studies each
    (scans ``p<k>_study<j>``, so that the converter groups them by their
    shared name), each scan a noisy body ellipse in air with bright
    ellipsoid lesions at random places, apart from each other.

    Args:
        patients (int): patients (two scans each).
        shape (tuple): voxels of a scan (z, y, x).
        spacing_mm (float): isotropic voxel spacing (mm).
        diameters_mm (tuple): lesion axes (mm) drawn uniformly within.
        lesions (tuple): lesions per scan, drawn from ``lesions[0]`` to
            ``lesions[1]`` inclusive.
        hu (tuple): body, lesion and noise HU.
        seed (int): the random draws.
    """
    patients: int = 6
    shape: Tuple[int, int, int] = (40, 110, 110)
    spacing_mm: float = 3.
    diameters_mm: Tuple[float, float] = (11., 32.)
    lesions: Tuple[int, int] = (2, 3)
    hu: Tuple[float, float, float] = (0., 120., 15.)
    seed: int = 0


def make_scans(root: Path, synth: SyntheticSet = SyntheticSet()) -> int:
    """``root/images/<scan>.nii.gz`` and their label maps (one value per
    lesion) in ``root/labels`` (:class:`SyntheticSet`); returns the number
    of lesions."""
    import SimpleITK as sitk
    rng = np.random.default_rng(synth.seed)
    shape = np.asarray(synth.shape)
    z, y, x = np.ogrid[:shape[0], :shape[1], :shape[2]]
    half = shape[1:] / 2
    body = ((y - half[0]) / (half[0] * .87))**2 + (
        (x - half[1]) / (half[1] * .91))**2 <= 1
    body_hu, lesion_hu, noise_hu = synth.hu
    total = 0
    for folder in ('images', 'labels'):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i in range(2 * synth.patients):
        arr = np.where(body, body_hu, -1000.) + rng.normal(
            0, noise_hu, synth.shape) * body
        seg = np.zeros(synth.shape, np.uint8)
        centres = []
        for k in range(int(rng.integers(synth.lesions[0],
                                        synth.lesions[1] + 1))):
            for _ in range(100):
                d = rng.uniform(*synth.diameters_mm, 3) / synth.spacing_mm
                # inside the body's inner half, clear of the top and bottom
                c = np.array([
                    rng.uniform(.2, .8) * shape[0],
                    *(h + rng.uniform(-.5, .5) * h for h in half)])
                if all(np.linalg.norm(c - o) > synth.diameters_mm[1] /
                       synth.spacing_mm for o in centres):
                    break
            centres.append(c)
            inside = sum(((g - cc) / (dd / 2))**2
                         for g, cc, dd in zip((z, y, x), c, d)) <= 1
            arr[inside] = lesion_hu + rng.normal(0, noise_hu, inside.sum())
            seg[inside] = k + 1
            total += 1
        name = f'p{i // 2:02d}_study{i % 2 + 1}'
        for folder, values in (('images', arr.astype(np.int16)),
                               ('labels', seg)):
            img = sitk.GetImageFromArray(values)
            img.SetSpacing((synth.spacing_mm, ) * 3)
            sitk.WriteImage(img, str(root / folder / f'{name}.nii.gz'))
    return total


def write_box_csv(root: Path, csv_path: Path) -> int:
    """The lesions of the label maps in ``root/labels`` as a box CSV of the
    converter's ``world`` format (``seriesuid,coordX,coordY,coordZ,
    diameter_mm``): the centre of each lesion's voxel box in world mm (the
    label map's geometry), its diameter the longer in-plane side of that
    box (the largest axial extent); returns the number of lesions."""
    import SimpleITK as sitk
    from scipy import ndimage

    from mmlesion.apps.own_data.scan_cases import BOX_COLUMNS
    from mmlesion.utils.writing.atomic import atomic_write_text
    rows = [','.join(BOX_COLUMNS['world'])]
    for path in sorted((root / 'labels').glob('*.nii.gz')):
        img = sitk.ReadImage(str(path))
        spacing = np.asarray(img.GetSpacing())  # x, y, z
        for box in ndimage.find_objects(sitk.GetArrayFromImage(img)):
            if box is None:
                continue
            lo = np.array([s.start for s in box[::-1]], float)  # x, y, z
            hi = np.array([s.stop - 1 for s in box[::-1]], float)
            centre = img.TransformContinuousIndexToPhysicalPoint(
                ((lo + hi) / 2).tolist())
            diameter = float(np.max((hi - lo + 1)[:2] * spacing[:2]))
            rows.append(','.join([path.name[:-len('.nii.gz')], *(
                f'{v:.3f}' for v in (*centre, diameter))]))
    atomic_write_text(str(csv_path), '\n'.join(rows) + '\n')
    return len(rows) - 1


def chance_froc(config: Path, boxes_per_image: int = 32,
                seed: int = 0) -> Dict[str, float]:
    """The FROC of a detector that knows nothing but the lesion sizes: on
    each test key slice of ``config``, ``boxes_per_image`` boxes of widths
    and heights drawn from the training boxes (mm, at the slice's pixel
    spacing), centred on pixels drawn uniformly inside the body (HU >
    -500), scored at random; through the config's own test evaluator (the
    FROC ``tools/test.py`` reports)."""
    from mmdet.registry import DATASETS, METRICS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmlesion.apps.own_data.dataset_plan import read_export_facts
    from mmlesion.datasets.deeplesion.png_slices import read_hu_png
    cfg = Config.fromfile(str(config))
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    data = dict(cfg.test_dataloader.dataset, pipeline=[])
    dataset = DATASETS.build(data)
    sizes_mm = read_export_facts(
        str(Path(data['data_root']) / data['ann_file'])).boxes_2d
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = dataset.metainfo
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        ys, xs = np.nonzero(read_hu_png(info['img_path']) > -500)
        pick = rng.integers(len(xs), size=boxes_per_image)
        wh = sizes_mm[rng.integers(len(sizes_mm), size=boxes_per_image)] / \
            float(info['spacing'])
        centre = np.stack([xs[pick], ys[pick]], 1) + .5
        boxes = np.concatenate([centre - wh / 2, centre + wh / 2], 1)
        samples.append(dict(
            img_id=info['img_id'], img_path=info['img_path'],
            ori_shape=(info['height'], info['width']),
            instances=info['instances'],
            pred_instances=dict(bboxes=boxes,
                                scores=rng.random(boxes_per_image),
                                labels=np.zeros(boxes_per_image, int))))
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def chance_scan_findings(ann_file: Path, split: str = 'test',
                         per_scan: int = 32, seeds: Sequence[int] = (0, )
                         ) -> list:
    """Findings of a detector that knows nothing but the lesion sizes: in
    each scan of ``split``, ``per_scan`` boxes of the training lesions' 3D
    sizes (mm), centred on voxels drawn uniformly inside the body (HU >
    -500), scored at random. The scans are read once; each seed is one
    draw. Returns per seed the per-scan ``(N, 7)`` findings, the lesions
    and the spacings for :func:`~mmlesion.evaluation.functional.
    scan_lesions.evaluate_scan_findings`."""
    from mmlesion.apis.whole_scan.calibrate import read_scan_truths
    from mmlesion.datasets.volumes import load_ct_volume
    sizes_mm = []
    for truth in read_scan_truths(str(ann_file), 'train'):
        spacing = np.asarray(load_ct_volume(truth.path).spacing_zyx)[::-1]
        sizes_mm += list((truth.lesions[:, 3:] - truth.lesions[:, :3]) *
                         spacing)
    sizes_mm = np.asarray(sizes_mm)
    scans = []  # (body voxels z, y, x; voxel spacing x, y, z; truth)
    for truth in read_scan_truths(str(ann_file), split):
        volume = load_ct_volume(truth.path)
        scans.append((np.nonzero(volume.array > -500), volume.spacing_zyx,
                      truth))
    draws = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        findings = []
        for (z, y, x), spacing_zyx, truth in scans:
            pick = rng.integers(len(x), size=per_scan)
            centre = np.stack([x[pick], y[pick], z[pick]], 1) + .5
            size = sizes_mm[rng.integers(len(sizes_mm), size=per_scan)] / \
                np.asarray(spacing_zyx)[::-1]
            findings.append(np.concatenate(
                [centre - size / 2, centre + size / 2,
                 rng.random((per_scan, 1))], 1))
        draws.append((findings, [t.lesions for _, _, t in scans],
                      [s for _, s, _ in scans]))
    return draws


#: Draws of chance's boxes averaged (:func:`whole_scan_3d`).
CHANCE_DRAWS = 20


def whole_scan_3d(config: Path, checkpoint: Path, ann_file: Path, out: Path,
                  cfg_options=()) -> dict:
    """The per-scan operating point chosen on the validation scans (stored
    in ``checkpoint``), the test scans judged as lesions in 3D beside
    chance (:func:`chance_scan_findings`, the mean over
    :data:`CHANCE_DRAWS` draws); written to ``out/whole_scan_3d.json`` and
    returned (module doc)."""
    from mmlesion.evaluation.functional.scan_lesions import (
        evaluate_scan_findings, scan_sensitivity_dict)
    from mmlesion.utils.writing.atomic import atomic_write_text
    options = ['--cfg-options', *cfg_options] if cfg_options else []
    for split, extra in (('val', ['--calibrate']), ('test', [])):
        print(_run('tools/eval_whole_scan.py', config, checkpoint, ann_file,
                   '--split', split, '--out-dir', out / f'scan_{split}',
                   *extra, *options))
    model = json.loads((out / 'scan_test' / 'scan_lesions.json').read_text())
    # chance: the mean over draws (one draw of 32 boxes a scan on a few
    # test lesions varies by a lesion or two)
    draws = [evaluate_scan_findings(*draw) for draw in chance_scan_findings(
        ann_file, seeds=range(CHANCE_DRAWS))]
    rate = model['fp_rates'].index(4.)
    record = dict(
        hit_rule=model['hit_rule'], test_scans=model['num_scans'],
        test_lesions=model['num_lesions'],
        lesion_steps=model['lesion_steps'],
        operating_point=model['operating_point'],
        findings_per_lesion=model['operating_point']['findings_per_lesion'],
        findings_per_scan=model['operating_point']['findings_per_scan'],
        findings_per_lesion_at_4_on_test=model['findings_per_lesion'][rate],
        sensitivity_at_fp_per_scan={
            f'{r:g}': s for r, s in zip(model['fp_rates'],
                                        model['sensitivities'])},
        chance_at_fp_per_scan={
            rate: round(float(np.mean([scan_sensitivity_dict(d)[rate]
                                       for d in draws])), 6)
            for rate in scan_sensitivity_dict(draws[0])},
        chance_draws=CHANCE_DRAWS,
        nearest_mm=model['nearest_mm'])
    atomic_write_text(str(out / 'whole_scan_3d.json'),
                      json.dumps(record, indent=1) + '\n')
    return record


#: The clone's root: the tools run from it.
ROOT = Path(__file__).resolve().parents[2]


def _cpu_seconds() -> float:
    """CPU seconds (user and system) of the finished child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
    parser.add_argument('--patients', type=int, default=8,
                        help='synthetic patients made, two scans each')
    parser.add_argument(
        '--val-patients', type=int, default=0,
        help='patients made after the others and put in the validation '
        'split by a split file (the others keep their hash split and '
        'their scans)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the synthetic scans')
    parser.add_argument('--shape', type=int, nargs=3,
                        default=SyntheticSet.shape, metavar=('Z', 'Y', 'X'),
                        help='voxels of a synthetic scan')
    parser.add_argument('--spacing-mm', type=float,
                        default=SyntheticSet.spacing_mm,
                        help='isotropic voxel spacing of the scans')
    parser.add_argument('--diameters-mm', type=float, nargs=2,
                        default=SyntheticSet.diameters_mm,
                        metavar=('LO', 'HI'),
                        help='lesion axes drawn uniformly within (mm)')
    parser.add_argument('--lesions', type=int, nargs=2,
                        default=SyntheticSet.lesions, metavar=('LO', 'HI'),
                        help='lesions per scan, drawn from LO to HI')
    parser.add_argument('--train-seed', type=int,
                        help="the training's seed (randomness.seed)")
    parser.add_argument(
        '--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
        help='settings of the planned config for the training, the test and '
        'the whole-scan runs (e.g. narrower widths)')
    parser.add_argument(
        '--budget-minutes', type=float, default=30.,
        help='CPU training minutes the plan is sized for')
    parser.add_argument(
        '--steps', default='make,convert,plan,train,test,scan3d',
        help='comma-separated steps to run, in this order; a step whose '
        'output exists is skipped')
    parser.add_argument(
        '--annotations', choices=('masks', 'boxes', 'recist'),
        default='masks',
        help='give the converter the label maps, the lesions as a box CSV '
        'in world mm (centre and diameter, as LUNA16), or as a RECIST '
        'sheet with clinic headers')
    parser.add_argument(
        '--anatomy', choices=('easy', 'real'), default='easy',
        help='bright lesions in a uniform body, or lesions of 20-80 HU '
        'contrast in a real CT scan (the shared data folder)')
    parser.add_argument('--no-pretrained', action='store_true',
                        help='plan for random backbone weights (no '
                        'download)')
    args = parser.parse_args()
    if args.val_patients and args.anatomy == 'real':
        parser.error('--val-patients: for the easy anatomy only')
    out, steps = Path(args.out).resolve(), args.steps.split(',')
    ann, export = out / 'volumes.json', out / '2d'
    config, work = out / 'planned.py', out / 'work'
    if 'make' in steps and not (out / 'labels').is_dir() and \
            args.anatomy == 'real':
        from real_anatomy import RealAnatomySet, make_real_scans
        print(make_real_scans(out, RealAnatomySet(
            patients=args.patients, seed=args.seed)).summary())
    if 'make' in steps and not (out / 'labels').is_dir():
        synth = SyntheticSet(
            patients=args.patients + args.val_patients,
            shape=tuple(args.shape),
            spacing_mm=args.spacing_mm,
            diameters_mm=tuple(args.diameters_mm),
            lesions=tuple(args.lesions), seed=args.seed)
        print(f'{make_scans(out, synth)} lesions in {2 * synth.patients} '
              f'scans of {synth.patients} patients')
    if 'convert' in steps and not ann.is_file():
        labels, keys = [out / 'labels'], []
        if args.val_patients:  # the added patients: validation only,
            # the others by their hash (an empty split) as without them
            (out / 'split.csv').write_text(
                'volume_id,split,patient_id\n' + ''.join(
                    f'p{k:02d}_study{j},'
                    f'{"val" * (k >= args.patients)},p{k:02d}\n'
                    for k in range(args.patients + args.val_patients)
                    for j in (1, 2)))
            keys = ['--split-file', out / 'split.csv']
        if args.anatomy == 'real':
            labels.append('--instances')
        if args.anatomy == 'real' and args.annotations == 'masks':
            # every slice of a training lesion a training image (19 centre
            # key slices of 4 patients are few); only for masks: a box CSV's
            # sphere or a RECIST ellipsoid is a guess off its key slice.
            # The held-out lesions keep one key slice each
            keys += ['--key-slices', 'every-train']
        if args.annotations == 'boxes':
            boxes = out / 'boxes.csv'
            print(f'{write_box_csv(out, boxes)} lesions written to {boxes}')
            labels = ['--boxes', boxes]
        if args.annotations == 'recist':
            from real_anatomy import RECIST_COLUMNS, write_recist_sheet
            sheet = out / 'recist.csv'
            print(f'{write_recist_sheet(out, sheet)} lesions written to '
                  f'{sheet}')
            labels = ['--boxes', sheet, '--box-format', 'recist',
                      '--columns', *RECIST_COLUMNS]
        log = _run('tools/dataset_converters/convert_dataset.py',
                   out / 'images', *labels, '--out', ann, '--export-2d',
                   export, '--val-fraction', .15, '--test-fraction', .25,
                   '--num-slices', 3, *keys)
        print('\n'.join(line for line in log.splitlines()
                        if not line.startswith('converting:')))
    if 'plan' in steps and not config.is_file():
        print(_run('tools/plan_dataset.py', ann, '--export-2d', export,
                   '--device', 'cpu', '--budget-minutes',
                   args.budget_minutes, '--out', config,
                   *(['--no-pretrained'] if args.no_pretrained else [])))
    loaders = [f'{s}_dataloader.{k}' for s in ('train', 'val', 'test')
               for k in ('num_workers=0', 'persistent_workers=False')]
    seed = [] if args.train_seed is None else [
        f'randomness.seed={args.train_seed}']
    if 'train' in steps and not (work / 'last_checkpoint').is_file():
        start = _cpu_seconds(), time.time()
        _run('tools/train.py', config, '--work-dir', work, '--cfg-options',
             *loaders, *args.cfg_options, *seed)
        print(f'training: {(_cpu_seconds() - start[0]) / 60:.1f} CPU '
              f'minutes, {(time.time() - start[1]) / 60:.1f} minutes of '
              'wall time')
    if 'test' in steps:
        ckpt = (work / 'last_checkpoint').read_text().strip()
        metrics = work / 'metrics.json'
        _run('tools/test.py', config, ckpt, '--work-dir', work,
             '--metrics-out', metrics, '--cfg-options', *loaders[4:],
             *args.cfg_options)
        for name, found in (
                ('model', json.loads(metrics.read_text())),
                ('chance', chance_froc(config))):
            print(f'{name}: ' + ', '.join(
                f'{k[len("froc/"):]} {v:.3f}' for k, v in found.items()
                if k.startswith('froc/sens@') and '_' not in k))
    if 'scan3d' in steps:
        best = sorted(work.glob('best_*.pth'))
        record = whole_scan_3d(config, best[-1] if best else Path(
            (work / 'last_checkpoint').read_text().strip()), ann, out,
            args.cfg_options)
        print('whole scans, lesions in 3D: findings per lesion found '
              f"{record['findings_per_lesion']} at 4 false findings per "
              'scan; sensitivity ' + ', '.join(
                  f'{k} {v:.3f}' for k, v in
                  record['sensitivity_at_fp_per_scan'].items())
              + '; chance ' + ', '.join(
                  f'{k} {v:.3f}' for k, v in
                  record['chance_at_fp_per_scan'].items()))


if __name__ == '__main__':
    main()
