# Copyright (c) mmlesion contributors. All rights reserved.
"""Run a trained 2.5D lesion detector on a CT scan and stack its boxes in 3D.

Example::

    python tools/infer_volume.py CONFIG CHECKPOINT scan.nii.gz --out-dir out
    python tools/infer_volume.py CONFIG CHECKPOINT dicom_folder/ \\
        --series-uid 1.2.3 --out-dir out --overwrite
    # LENS: expert 0 only, final scores re-scored by the 3D FPR (Eq. 2)
    python tools/infer_volume.py LENS_CONFIG CHECKPOINT scan.nii.gz \\
        --experts 0 --fpr-config FPR_CONFIG --fpr-checkpoint FPR_CKPT \\
        --out-dir out
    # a day's scans: one model, the next scan read while this one runs
    python tools/infer_volume.py CONFIG CHECKPOINT --scan-list today.txt \\
        --out-dir out --device cuda:0 --batch-size 32 --workers 1

SCAN is a NIfTI file, a MetaImage ``.mhd`` (LUNA16) or a DICOM series
folder. Writes into ``--out-dir``: ``findings.json``, ``candidates.csv``
(LUNA16 format, read by ``tools/analysis_tools/eval_luna16.py``),
``key_slices/finding_NNN.png``, ``overview.png``, ``report.html``
(self-contained) and, for a DICOM series, ``findings_sr.dcm`` (TID 1500
SR) and ``findings_seg.dcm`` (SEG, for models that predict masks). See
:mod:`mmlesion.apis.whole_scan.infer` and
:mod:`mmlesion.apis.whole_scan.write_dicom`.

The files appear together or not at all (written into a hidden folder
beside ``--out-dir`` and moved in at the end; other files in ``--out-dir``
stay; what a killed run left there is removed by the next run, even a
refused one), ``findings.json`` records the checkpoint (path, SHA-256), the
config and the versions, and a read-only or full ``--out-dir`` is refused
before the detection runs; a disk that fills up (or a quota, a read-only
file system) while the files are written ends the run in one line naming
the file, the bytes needed and free and how to go on, without a traceback
and with ``--out-dir`` as it was. Refused too, each naming what to change:
an ``--out-dir`` that is (or is inside) the DICOM series folder it reads, a
checkpoint whose weights hold NaN or Inf or whose fields have the wrong
type, a pixel spacing that would resample the scan to more than 2**30
voxels (``MMLESION_MAX_VOXELS``), and ``--cfg-options`` with a typo in a
nested key or a text where a number belongs.

Several scans (``SCAN SCAN ...`` or ``--scan-list FILE``, one path a
line) run through one model loaded once, each scan's files in
``--out-dir/<name>/`` (the file name without extensions, or the DICOM
folder's name), with ``--out-dir/scans.csv`` listing each scan's status
(done, skipped, failed and why); a failing scan does not stop the others,
scans with results already are skipped (run the same command again after
a kill), and while the model runs on a scan the next ones are read and
resampled (``--read-ahead``) and the files of the last ones are written
(``--no-overlap``: one step after another; the findings are the same). See
:mod:`mmlesion.apps.whole_scan.batch`.

``--scan-tree ROOT`` adds every scan under a folder (results named by
their path under it); ``--jobs N [--slurm]`` shards a batch, or the series
of a server query, over local processes or a Slurm job array, every scan
finished once, with one merged findings table (docs/archive.md;
:mod:`mmlesion.apps.whole_scan.shards`,
:mod:`mmlesion.apps.whole_scan.server_shards`).

Weights trained on the synthetic demo data (the rule:
:mod:`mmlesion.apis.whole_scan.model`) get a ``model_warning`` in
``findings.json``, a red box at the top of ``report.html`` and a line in
the console: their findings are not clinically meaningful.
"""
import argparse
import sys
from typing import Optional

# mmlesion_cli before anything of mmlesion: it silences the stack's known
# start-up warnings (mmlesion_cli/warnings_filter.py).
from mmlesion_cli import package_json, tool_parser
from mmlesion_cli.common_args import (add_cfg_options_argument,
                                      add_scan_check_arguments,
                                      add_trust_checkpoint_argument,
                                      config_file_error,
                                      scan_check_flags)
from mmlesion_cli.method_flags import add_method_arguments


def shown_defaults() -> dict:
    """The defaults and choices of whole-scan inference the options show
    (:class:`~mmlesion.apis.whole_scan.settings.DetectionSettings`,
    :class:`~mmlesion.apis.whole_scan.settings.RunSettings`, the batch,
    shard and server options of :mod:`mmlesion.apps.whole_scan`): the data
    files those modules read, read without importing the library."""
    return dict(package_json('apis/whole_scan/tool_defaults.json'),
                **package_json('apps/whole_scan/tool_defaults.json'))


def parse_args(argv=None) -> argparse.Namespace:
    shown = shown_defaults()
    detection, run = shown['DetectionSettings'], shown['RunSettings']
    pixel_spacing = package_json('datasets/transforms/tool_defaults.json')[
        'DEFAULT_PIXEL_SPACING']
    parser = tool_parser(
        description='Detect lesions in a CT scan with a 2.5D detector and '
        'stack the per-slice boxes into 3D findings.',
        epilog='Weights: mmlesion ships none for real CT. The demo '
        'checkpoint (tools/run_demo.py) was trained on synthetic slices '
        'and finds nothing meaningful on a real scan; train a full-size '
        'config on DeepLesion (configs/elixirnet, configs/retinanet_lesion, '
        'configs/lens) or load weights trained on real CT.')
    parser.add_argument('config', help='a 2.5D config of the repository')
    parser.add_argument('checkpoint', help='trained weights')
    parser.add_argument(
        'scan', nargs='*',
        help='NIfTI file, .mhd (+ .raw) or DICOM folder; several run as a '
        'batch (one model; results in --out-dir/<name>/)')
    parser.add_argument(
        '--scan-list',
        help='a text file of scans, one path a line (relative to the '
        "file's folder; # starts a comment): run as a batch")
    parser.add_argument(
        '--scan-tree', metavar='ROOT',
        help='every scan under a folder, at any depth (NIfTI, .mhd, .mha, '
        '.nrrd files and folders of DICOM files), run as a batch; results '
        'in --out-dir/<path under ROOT, _ between the parts>/')
    add_server_arguments(parser, shown)
    add_shard_arguments(parser, shown)
    parser.add_argument('--out-dir', required=True, help='output folder')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace earlier results in --out-dir (a batch: '
                        'run scans with results again; without it they are '
                        'skipped)')
    parser.add_argument(
        '--no-overlap', action='store_true',
        help='a batch: one step after another (default: while the model '
        'runs on a scan, threads read and resample the next one and write '
        'the files of the last one; the findings are the same)')
    parser.add_argument(
        '--read-ahead', type=int, metavar='N',
        default=shown['Finishing']['read_ahead'],
        help='a batch: scans read and resampled ahead of the one the model '
        'runs on (each holds a scan and its resampled copy in memory, about '
        '0.45 GB for 512 x 512 x 300: 1 saves one)')
    parser.add_argument(
        '--huge-pages', action='store_true',
        help="let numpy ask Linux for transparent huge pages for the scans' "
        'arrays (numpy\'s default; off by default: a batch on a virtual '
        'machine was faster without them; the findings are the same)')
    parser.add_argument('--series-uid',
                        help='DICOM series to read from a folder with '
                        'several')
    parser.add_argument(
        '--pixel-spacing', type=float,
        help='in-plane mm/px the model was trained at (default: what '
        "CHECKPOINT records of its training data, else the config's "
        f"ResampleToSpacing, else {pixel_spacing})")
    parser.add_argument(
        '--slice-interval', type=float, metavar='MM',
        help='slice interval (mm) the model was trained at (default: what '
        "CHECKPOINT records of its training data, else the config's "
        'LoadDeepLesionSlices interval_mm)')
    parser.add_argument('--device',
                        default=run['device'],
                        help='e.g. cpu, cuda:0')
    parser.add_argument(
        '--backend', choices=shown['BACKENDS'], default=run['backend'],
        help="what runs the detector's convolutions (backbone, neck, RPN "
        'head) and box head on a CPU: onnxruntime or openvino (f32), '
        'exported once and cached beside CHECKPOINT '
        '(<checkpoint>.<key>[.box_head].onnx), the rest in torch; the same '
        'findings (docs/infer_volume.md); openvino-bf16: bf16 where the CPU '
        'has it, not the same findings. A detector that cannot be exported '
        'runs in torch, saying why')
    parser.add_argument('--batch-size', type=int,
                        default=detection['batch_size'],
                        help='slices per forward pass')
    parser.add_argument(
        '--workers', type=int, default=detection['workers'],
        help='threads (or processes, --worker-type) preparing the next '
        'slices while the model runs (0: in the main process, slower where '
        'measured; the findings are the same for any value)')
    parser.add_argument(
        '--worker-type', choices=shown['WORKER_TYPES'],
        default=detection['worker_type'],
        help='how --workers run: threads share the prepared slices without '
        'copying them (faster where measured), processes avoid the GIL')
    parser.add_argument(
        '--fp-per-scan', type=float, metavar='K',
        default=run['fp_per_scan'],
        help="keep the findings at CHECKPOINT's per-scan operating point "
        'of this many false findings per validation scan (lesions judged in '
        '3D; tools/eval_whole_scan.py --calibrate records it, with the '
        'lesion steps of the stacking chosen with it), one of the rates '
        'recorded; without that record, --fp-rate applies')
    parser.add_argument(
        '--fp-rate', type=float, metavar='FP',
        default=None,
        help="keep the findings at CHECKPOINT's validated operating point "
        'of this many false positives per validation image (a 2D FROC: per '
        'key slice, not per scan) or per sub-volume (a 3D FROC), one of the '
        'rates the validation recorded; every finding stays in '
        'candidates.csv. A checkpoint without the record keeps every '
        'finding above --score-thr (saying so); a malformed record is '
        f"refused (default {run['fp_rate']:g}; given, it wins over the "
        'per-scan point)')
    parser.add_argument(
        '--score-thr', type=float, default=None,
        help=f"not given: 2D boxes below {detection['score_thr']} are not "
        'stacked and the '
        'findings of the operating point are kept; given: 2D boxes below it '
        'are not stacked and every finding above it is kept')
    parser.add_argument('--iou-thr', type=float, default=detection['iou_thr'],
                        help='stacking: IoU > thr on consecutive slices')
    parser.add_argument('--max-gap', type=int, default=detection['max_gap'],
                        help='stacking: missing slices a finding bridges')
    parser.add_argument('--min-slices', type=int,
                        default=detection['min_slices'],
                        help='drop findings spanning fewer slices')
    parser.add_argument('--max-pictures', type=int,
                        default=run['max_pictures'],
                        help='findings drawn and listed in the report')
    parser.add_argument(
        '--dicom', choices=shown['DICOM_MODES'],
        default=run['dicom'],
        help='DICOM SR (TID 1500) and SEG of the findings: auto = when SCAN '
        'is a DICOM series (needs highdicom), yes = an error if they cannot '
        'be written, no = never')
    parser.add_argument(
        '--allow-partial-load', action='store_true',
        help='run although CHECKPOINT does not fit the model exactly '
        '(missing / unexpected keys, other shapes are then only logged)')
    add_cfg_options_argument(parser)
    add_trust_checkpoint_argument(parser)
    add_scan_check_arguments(parser)
    # each method's own options (mmlesion/methods/<name>/flags.py)
    add_method_arguments(parser, 'whole_scan')
    args = parser.parse_args(argv)
    if args.read_ahead < 1:
        parser.error(f'--read-ahead must be 1 or more, got {args.read_ahead}')
    server = check_server_arguments(parser, args)
    if server and args.scan_tree:
        parser.error(f'{server} takes its scans from the server: give no '
                     '--scan-tree with it')
    if not (args.scan or args.scan_list or args.scan_tree or server):
        parser.error('give a SCAN, --scan-list, --scan-tree or --dicomweb '
                     '(or --dimse)')
    args.batch = (bool(args.scan_list or args.scan_tree or server)
                  or len(args.scan) > 1)
    if args.jobs is not None and not args.batch:
        parser.error('--jobs shards a batch of scans (several SCANs, '
                     '--scan-list, --scan-tree or a server query), not one '
                     'scan')
    if args.slurm and args.jobs is None:
        parser.error('--slurm runs the shards of --jobs N as Slurm jobs: '
                     'give --jobs')
    if args.batch and args.series_uid:
        parser.error('--series-uid names the series of one DICOM folder; '
                     'a batch reads one series per folder')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)

    import mmlesion  # noqa: F401  (registers components, checkpoint loader)
    from mmlesion.apps.whole_scan.server_source import DicomServerError
    from mmlesion.apis.whole_scan.run import run_volume_inference
    from mmlesion.apis.whole_scan.write import (format_summary,
                                                remove_stale_staging)
    from mmlesion.datasets.volumes.scan_switches import set_scan_checks
    from mmlesion.utils import (CorruptCheckpointError, OutputDirError,
                                UntrustedCheckpointError, get_tool_logger)
    from mmlesion.utils.configs.cfg_options import apply_cfg_options
    from mmlesion.utils.configs.loading import load_config
    get_tool_logger('infer_volume')
    try:  # the files a method's options name (LENS's FPR config, weights)
        _, rescorer = _method_steps(args)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    files = {} if rescorer is None else dict(rescorer.files)
    # what a killed run left beside --out-dir goes, also when this run is
    # refused below (never a path given here)
    if not args.batch:
        remove_stale_staging(args.out_dir, keep=[
            args.config, args.checkpoint, args.scan[0], *files.values()])
    error = config_file_error(args.config) or next(filter(None, (
        config_file_error(path, '--' + role.replace('_', '-'))
        for role, path in files.items() if role.endswith('config'))), None)
    if error:  # a typo: the closest config named
        print(f'error: {error}', file=sys.stderr)
        return 1
    try:
        cfg = load_config(args.config)  # a broken _base_ chain: one line
        apply_cfg_options(cfg, args.cfg_options, source=args.config)
        set_scan_checks(cfg, scan_check_flags(args))  # --force-ct and co.
        if args.dicomweb or args.dimse:
            return _run_server(args, cfg)
        if args.jobs is not None:
            return _run_sharded(args, cfg)
        if args.batch:
            return _run_batch(args, cfg)
        from mmlesion.apis.whole_scan.read import ScanSource
        result = run_volume_inference(
            cfg, args.checkpoint, ScanSource(args.scan[0], args.series_uid),
            out_dir=args.out_dir, run_settings=_run_settings(args))
    except (FileNotFoundError, FileExistsError, ValueError, ImportError,
            OutputDirError, UntrustedCheckpointError,
            CorruptCheckpointError, DicomServerError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:  # Ctrl-C; a sharded run's jobs ended
        print(f'interrupted: {err}' if str(err) else 'interrupted',
              file=sys.stderr)
        return 130
    except OSError as err:  # a full disk while the results are written
        refused = refused_output_line(err, args)
        if refused is None:
            raise
        print(f'error: {refused}', file=sys.stderr)
        return 1
    print(format_summary(result))
    return 0


def refused_output_line(err: OSError,
                        args: argparse.Namespace) -> Optional[str]:
    """One line for a write the file system refused (full, over quota,
    read-only, no permission in ``--out-dir``): the file, the bytes it
    needed and free, how to go on; None for any other error."""
    from mmlesion.utils.writing.refusals import output_write_refusal
    refused = output_write_refusal(err, args.out_dir)
    if refused is None:
        return None
    if not args.batch:
        resume = ('run the same command again (--out-dir keeps its earlier '
                  'files until a complete new set replaces them)')
    else:
        resume = ('run the same command '
                  + ('without --overwrite' if args.overwrite else 'again')
                  + ': scans with results in --out-dir are skipped, the '
                  'others run')
    return refused.failure.message(resume)


def _method_steps(args: argparse.Namespace):
    """The model adjustments and the re-scorer (or None) the registered
    methods make of their options (LENS's --experts, --fpr-config).

    Raises:
        ValueError: options a method refuses, or one it reads that the
            parser lacks.
    """
    from mmlesion.apis.whole_scan.method_steps import whole_scan_steps
    return whole_scan_steps(args)


def _run_settings(args: argparse.Namespace):
    """The options of the command line as
    :class:`mmlesion.apis.whole_scan.settings.RunSettings`; a method's
    options (LENS's --experts and --fpr-config) as the adjustments and
    re-scorer it makes of them (:func:`_method_steps`)."""
    from mmlesion.apis.whole_scan.settings import (DetectionSettings,
                                                   RunSettings)
    adjustments, rescorer = _method_steps(args)
    return RunSettings(
        detection=DetectionSettings(
            batch_size=args.batch_size,
            score_thr=(DetectionSettings.score_thr if args.score_thr is None
                       else args.score_thr),
            iou_thr=args.iou_thr, max_gap=args.max_gap,
            min_slices=args.min_slices, workers=args.workers,
            worker_type=args.worker_type),
        pixel_spacing=args.pixel_spacing, device=args.device,
        overwrite=args.overwrite, max_pictures=args.max_pictures,
        dicom=args.dicom, cfg_name=args.config,
        adjustments=adjustments, rescorer=rescorer,
        allow_partial_load=args.allow_partial_load,
        interval_mm=args.slice_interval, huge_pages=args.huge_pages,
        fp_rate=None if args.score_thr is not None else (
            RunSettings.fp_rate if args.fp_rate is None else args.fp_rate),
        fp_per_scan=None if args.score_thr is not None or (
            args.fp_rate is not None) else args.fp_per_scan,
        backend=args.backend)


def add_server_arguments(parser: argparse.ArgumentParser,
                         shown: dict) -> None:
    """--dicomweb or --dimse, --query, --dicomweb-user, --called-aet,
    --calling-aet, --no-store, --server-timeout (docs/dicom_server.md);
    ``shown``:
    :func:`shown_defaults`."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        '--dicomweb', metavar='URL',
        help='take the scans from a DICOMweb server (e.g. '
        'http://pacs:8042/dicom-web): the series --query finds are retrieved '
        'into --out-dir/series/, run as a batch, and their SR and SEG stored '
        'back into their studies (never twice)')
    source.add_argument(
        '--dimse', metavar='HOST:PORT',
        help='the same from a DICOM server without DICOMweb, over DIMSE '
        '(C-FIND, C-GET, C-STORE) to its DICOM port, e.g. pacs:104; needs '
        '--called-aet')
    parser.add_argument(
        '--query', action='append', default=[], metavar='KEY=VALUE',
        help='--dicomweb, --dimse: a filter, repeatable: PatientID, '
        'StudyDate (YYYYMMDD or YYYYMMDD-YYYYMMDD), Modality, '
        'BodyPartExamined, SeriesDescription, StudyInstanceUID, '
        'SeriesInstanceUID, AccessionNumber')
    parser.add_argument(
        '--dicomweb-user', metavar='USER',
        help='--dicomweb: HTTP basic authentication user; the password is '
        'read from the environment variable MMLESION_DICOMWEB_PASSWORD')
    parser.add_argument('--called-aet', metavar='AET',
                        help='--dimse: the AE title of the server')
    parser.add_argument(
        '--calling-aet', metavar='AET',
        default=shown['DimseSettings']['calling_aet'],
        help='--dimse: our AE title, as the server lists it among its '
        'modalities')
    parser.add_argument(
        '--no-store', action='store_true',
        help='--dicomweb, --dimse: do not store the SR and SEG back on the '
        'server')
    parser.add_argument(
        '--server-timeout', type=float, metavar='SECONDS',
        default=shown['SERVER_TIMEOUT_S'],
        help='--dicomweb, --dimse: seconds to wait to connect and for each '
        'answer of the server')


def check_server_arguments(parser: argparse.ArgumentParser,
                           args: argparse.Namespace) -> Optional[str]:
    """Refuse server options that do not go together; the server option
    given (``'--dicomweb'``, ``'--dimse'``) or None."""
    server = ('--dicomweb' if args.dicomweb else
              '--dimse' if args.dimse else None)
    if server and (args.scan or args.scan_list):
        parser.error(f'{server} takes its scans from the server: give no '
                     'SCAN or --scan-list with it')
    if args.dimse and not args.called_aet:
        parser.error('--dimse needs --called-aet, the AE title of the '
                     'server (e.g. ORTHANC)')
    if args.called_aet and not args.dimse:
        parser.error('--called-aet goes with --dimse')
    if args.dicomweb_user and not args.dicomweb:
        parser.error('--dicomweb-user goes with --dicomweb')
    return server


def add_shard_arguments(parser: argparse.ArgumentParser,
                        shown: dict) -> None:
    """--jobs, --slurm and the Slurm jobs' resources
    (:class:`mmlesion.apps.whole_scan.shards.ShardSettings`); ``shown``:
    :func:`shown_defaults`."""
    shard = shown['ShardSettings']

    parser.add_argument(
        '--jobs', type=int, metavar='N',
        help='a batch: shard the scans over N jobs (local processes, or '
        'Slurm jobs with --slurm), results in --out-dir/shard_<k>/<name>/; '
        'unfinished scans are retried once, then --out-dir/scans.csv, '
        'findings.csv (all findings) and summary.html are written')
    parser.add_argument('--slurm', action='store_true',
                        help='--jobs: submit the shards as a Slurm job array '
                        '(submitit) instead of local processes')
    parser.add_argument('--partition', help='--slurm: the partition')
    parser.add_argument('--cpus-per-task', type=int,
                        default=shard['cpus_per_task'],
                        help='--slurm: CPUs per job')
    parser.add_argument('--gpus-per-job', type=int,
                        default=shard['gpus_per_job'],
                        help='--slurm: GPUs per job (use --device cuda:0)')
    parser.add_argument('--mem-gb', type=int, default=shard['mem_gb'],
                        help="--slurm: memory per job (0: the partition's "
                        'default)')
    parser.add_argument('--timeout-min', type=int,
                        default=shard['timeout_min'],
                        help='--slurm: time limit of each job, minutes')


def _batch_scans(args: argparse.Namespace) -> list:
    """The scans of the command line, --scan-list and --scan-tree."""
    from mmlesion.apps.whole_scan.scan_list import (find_scans,
                                                    read_scan_list)
    scans = list(args.scan)
    if args.scan_list:
        scans += read_scan_list(args.scan_list)
    if args.scan_tree:
        scans += find_scans(args.scan_tree, skip=args.out_dir)
    return scans


def _shard_settings(args: argparse.Namespace):
    """--jobs, --slurm and the jobs' resources as
    :class:`mmlesion.apps.whole_scan.shards.ShardSettings`."""
    from mmlesion.apps.whole_scan.shards import ShardSettings
    return ShardSettings(
        jobs=args.jobs, launcher='slurm' if args.slurm else 'local',
        partition=args.partition, cpus_per_task=args.cpus_per_task,
        gpus_per_job=args.gpus_per_job, mem_gb=args.mem_gb,
        timeout_min=args.timeout_min)


def _run_sharded(args: argparse.Namespace, cfg, source=None) -> int:
    """The batch (or, with ``source``, the series of a server query)
    sharded over --jobs jobs (:func:`mmlesion.apps.whole_scan.shards.
    run_sharded_inference`, :func:`mmlesion.apps.whole_scan.server_shards.
    run_sharded_query`); 1 when a scan failed."""
    import os

    from mmlesion.apis.whole_scan.settings import Finishing
    from mmlesion.apps.whole_scan.shard_summary import \
        format_sharded_summary
    from mmlesion.apps.whole_scan.shards import (ShardedRun,
                                                 run_sharded_inference)
    settings = ShardedRun(
        cfg, args.checkpoint, args.out_dir, run_settings=_run_settings(args),
        shards=_shard_settings(args), overlap=not args.no_overlap,
        finishing=Finishing(read_ahead=args.read_ahead))
    if source is None:
        rows = run_sharded_inference(_batch_scans(args), settings)
    else:
        from mmlesion.apps.whole_scan.dicomweb_batch import SERVER_SUMMARY
        from mmlesion.apps.whole_scan.server_shards import run_sharded_query
        rows = run_sharded_query(source, settings).rows
        print('every series the query found (run or skipped): '
              f'{os.path.join(args.out_dir, SERVER_SUMMARY)}')
    if rows:
        print(format_sharded_summary(rows, args.out_dir))
    return int(any(row.status == 'failed' for row in rows))


def _run_server(args: argparse.Namespace, cfg) -> int:
    """The series of a DICOMweb or DIMSE query through one model, results
    stored back (:func:`mmlesion.apps.whole_scan.dicomweb_batch.
    run_server_inference`); 1 when a series failed."""
    import os

    from mmlesion.apps.whole_scan.dicomweb_batch import (
        SERVER_SUMMARY, ServerOptions, run_server_inference)
    from mmlesion.apps.whole_scan.dicomweb_source import (PASSWORD_ENV,
                                                          DicomWebSettings)
    from mmlesion.apps.whole_scan.dimse_source import DimseSettings
    from mmlesion.apps.whole_scan.server_source import parse_query
    from mmlesion.apis.whole_scan.settings import Finishing
    query = parse_query(args.query)
    if args.dimse:
        source = DimseSettings(
            address=args.dimse, called_aet=args.called_aet,
            calling_aet=args.calling_aet, query=query,
            store_back=not args.no_store, timeout_s=args.server_timeout)
    else:
        source = DicomWebSettings(
            url=args.dicomweb, query=query, user=args.dicomweb_user,
            password=os.environ.get(PASSWORD_ENV),
            store_back=not args.no_store, timeout_s=args.server_timeout)
    if args.jobs is not None:
        return _run_sharded(args, cfg, source)
    rows = run_server_inference(
        cfg,
        args.checkpoint,
        source,
        args.out_dir,
        run_settings=_run_settings(args),
        options=ServerOptions(overlap=not args.no_overlap,
                              finishing=Finishing(read_ahead=args.read_ahead)))
    for row in rows:
        what = (f'{row.findings} findings; SR {row.sr or "-"}, SEG '
                f'{row.seg or "-"}' if row.status == 'done' else row.reason)
        print(f'{row.status:8s} series {row.series_uid}: {what}')
    counts = {
        s: sum(r.status == s for r in rows)
        for s in ('done', 'skipped', 'failed')
    }
    print(f"{len(rows)} series: {counts['done']} done, {counts['skipped']} "
          f"skipped, {counts['failed']} failed; "
          f'{os.path.join(args.out_dir, SERVER_SUMMARY)}')
    return int(counts['failed'] > 0)


def _run_batch(args: argparse.Namespace, cfg) -> int:
    """Every scan of the command line and of --scan-list through one
    model (:func:`mmlesion.apps.whole_scan.batch.run_batch_inference`); 1
    when a scan failed."""
    from mmlesion.apps.whole_scan.batch import (BatchOptions,
                                                format_batch_summary,
                                                run_batch_inference)
    from mmlesion.apis.whole_scan.settings import Finishing
    rows = run_batch_inference(
        cfg,
        args.checkpoint,
        _batch_scans(args),
        args.out_dir,
        run_settings=_run_settings(args),
        options=BatchOptions(overlap=not args.no_overlap,
                             finishing=Finishing(read_ahead=args.read_ahead)))
    print(format_batch_summary(rows, args.out_dir))
    return int(any(row.status == 'failed' for row in rows))


if __name__ == '__main__':
    sys.exit(main())
