# Copyright (c) mmlesion contributors. All rights reserved.
"""Judge whole-scan findings as lesions in 3D on scans with known lesions,
and record the per-scan operating point a whole-scan run keeps findings at
(docs/infer_volume.md, "Which findings are kept").

Usage::

    # the validation scans: choose the lesion steps and the thresholds at
    # 1/8 to 8 false findings per scan, stored in CHECKPOINT
    python tools/eval_whole_scan.py CONFIG CHECKPOINT volumes.json \\
        --split val --calibrate --out-dir work_dirs/scan_val
    # the test scans, with what the checkpoint records
    python tools/eval_whole_scan.py CONFIG CHECKPOINT volumes.json \\
        --split test --out-dir work_dirs/scan_test

``volumes.json``: the common volume annotation file (the converter's, or
``deeplesion_to_3d.py``'s); ``--split`` picks its volumes whose ``split``
is it (all without the option). Each scan is detected once as
``tools/infer_volume.py`` detects it; a finding hits a lesion at 3D IoBB
>= 0.3 (LENS), and a second finding on one lesion counts as a false
positive. Prints the sensitivity at each rate, the findings per lesion
found and the findings per scan, and writes ``scan_lesions.json`` and
``scan_froc.png`` into ``--out-dir``.
"""
import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Optional, Sequence

from mmlesion_cli import package_json, tool_parser
from mmlesion_cli.common_args import (add_cfg_options_argument,
                                      add_trust_checkpoint_argument)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('config', help='a 2.5D detector config')
    parser.add_argument('checkpoint', help='its trained weights')
    parser.add_argument('ann_file', help='the volume annotation file')
    parser.add_argument('--split', choices=('train', 'val', 'test'),
                        help='only the volumes of this split')
    parser.add_argument(
        '--calibrate', action='store_true',
        help='choose the lesion steps on these scans and store the per-scan '
        'operating point in CHECKPOINT (the file is replaced whole; '
        'validation scans only, never the test scans)')
    parser.add_argument('--out-dir', required=True,
                        help='scan_lesions.json and scan_froc.png go here')
    parser.add_argument('--device', default='cpu', help='torch device')
    parser.add_argument(
        '--backend', default='torch',
        choices=package_json('apis/whole_scan/tool_defaults.json')['BACKENDS'],
        help='what runs the detector on a CPU, as tools/infer_volume.py '
        '(e.g. openvino-bf16: its findings judged against the known truth)')
    parser.add_argument('--pixel-spacing', type=float,
                        help='as tools/infer_volume.py')
    parser.add_argument('--allow-outside-data', action='store_true',
                        help='scans may lie outside the annotation file\'s '
                        'folder')
    add_cfg_options_argument(parser)
    add_trust_checkpoint_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.calibrate and args.split == 'test':
        print('error: --calibrate chooses the operating point on the test '
              'scans: calibrate on the validation scans (--split val)',
              file=sys.stderr)
        return 1
    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.apis.whole_scan.calibrate import (calibrate_scans,
                                                    detect_scans, judge_kept,
                                                    judge_scans,
                                                    read_scan_truths,
                                                    record_in_checkpoint)
    from mmlesion.apis.whole_scan.model import z_extent_mm
    from mmlesion.apis.whole_scan.run import (load_volume_run,
                                              volume_run_config)
    from mmlesion.apis.whole_scan.settings import (DetectionSettings,
                                                   RunSettings)
    from mmlesion.utils import (CorruptCheckpointError,
                                UntrustedCheckpointError, get_tool_logger)
    from mmlesion.utils.configs.cfg_options import apply_cfg_options
    from mmlesion.utils.configs.loading import load_config
    get_tool_logger('eval_whole_scan')
    out = Path(args.out_dir)
    kept = None
    try:
        cfg = load_config(args.config)
        apply_cfg_options(cfg, args.cfg_options, source=args.config)
        truths = read_scan_truths(args.ann_file, args.split,
                                  args.allow_outside_data or None)
        run = RunSettings(pixel_spacing=args.pixel_spacing,
                          device=args.device, cfg_name=args.config,
                          backend=args.backend)
        run_config = volume_run_config(cfg, run, args.checkpoint)
        loaded = load_volume_run(run_config.cfg, args.config,
                                 args.checkpoint, run,
                                 preloaded=run_config.checkpoint)
        point = loaded.info.operating_point
        detection = DetectionSettings()
        scans = detect_scans(loaded.model, truths, run_config.settings,
                             detection)
        # what one scan of the FP denominator is: the size of these scans
        extents = [z_extent_mm(s.volume) for s in scans]
        split = (f'{args.ann_file}, split {args.split or "all"}, '
                 f'{len(scans)} scans of '
                 f'{sum(extents) / len(extents):.0f} mm along z on average')
        if args.calibrate:
            calibration = calibrate_scans(scans, detection)
            steps, result = calibration.lesion_steps, calibration.result
            record_in_checkpoint(args.checkpoint,
                                 calibration.operating_points(split))
        else:
            scan_point = point is not None and point.fp_unit == 'scan'
            steps = (point.lesion_steps if scan_point else
                     detection.lesion_steps())
            detection = replace(detection, **steps)
            result = judge_scans(scans, detection)
            if scan_point:  # what a whole-scan run keeps on these scans
                kept = judge_kept(scans, detection, point.threshold)
    except (FileNotFoundError, ValueError, ImportError,
            UntrustedCheckpointError, CorruptCheckpointError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    record = dict(split=split, lesion_steps=steps, **result.to_dict())
    if args.calibrate:
        record['tried'] = [dict(steps=s, mean_sensitivity=round(m, 6))
                           for s, m in calibration.tried]
    if kept is not None:
        record['operating_point'] = dict(
            fp_per_scan=point.fp_rate, validated_on=point.split,
            **asdict(kept))
    from mmlesion.utils.writing.atomic import atomic_write_text
    atomic_write_text(str(out / 'scan_lesions.json'),
                      json.dumps(record, indent=1) + '\n')
    _figure(result, out / 'scan_froc.png', split)
    print(format_result(result, steps, split))
    if kept is not None:
        per = kept.findings_per_lesion
        print(f'at the recorded operating point ({point.fp_rate:g} false '
              f'findings per scan on {point.split}: score >= '
              f'{kept.threshold:.4g}): sensitivity {kept.sensitivity:.3f}, '
              f'{kept.findings_per_scan:.2f} findings per scan, '
              f'{kept.false_per_scan:.2f} false, findings per lesion found '
              + ('-' if per is None else f'{per:.2f}'))
    if args.calibrate:
        print(f'stored in {args.checkpoint}: the per-scan operating points '
              '(tools/infer_volume.py keeps the findings at --fp-per-scan, '
              'default 4)')
    return 0


def format_result(result, steps: dict, split: str) -> str:
    """The table the tool prints."""
    lines = [f'{result.num_lesions} lesions in {result.num_scans} scans '
             f'({split}); hit: {result.hit_rule}',
             'lesion steps: ' + ', '.join(f'{k} {v}' for k, v in
                                         steps.items()),
             f'{"FPs/scan":>9} {"sens":>6} {"score>=":>8} '
             f'{"findings/lesion":>16} {"findings/scan":>14}']
    for i, rate in enumerate(result.fp_rates):
        per = result.findings_per_lesion[i]
        lines.append(f'{rate:>9g} {result.sensitivities[i]:>6.3f} '
                     f'{result.thresholds[i]:>8.4g} '
                     f'{"-" if per is None else f"{per:.2f}":>16} '
                     f'{result.findings_per_scan[i]:>14.2f}')
    lines.append(f'mean sensitivity {result.mean_sensitivity():.3f}')
    return '\n'.join(lines)


def _figure(result, path: Path, title: str) -> None:
    """The sensitivities at the rates, a FROC picture."""
    from mmlesion.visualization.froc_curves import plot_froc_curves
    plot_froc_curves({'all': ('lesions', result.curve)}, result.fp_rates,
                     str(path), result.sensitivities, title=title,
                     fp_unit='scan (false findings)')


if __name__ == '__main__':
    sys.exit(main())
