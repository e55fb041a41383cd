# Copyright (c) mmlesion contributors. All rights reserved.
"""Scans per hour of an archive run (docs/archive.md): the one-process
batch of DICOM series folders (``tools/infer_volume.py --scan-list``, the
baseline) against the same series sharded over ``--jobs 1`` and ``--jobs
2`` local processes, and against the series of a DICOMweb query on a local
Orthanc (``--dicomweb URL --query ... --no-store``: the query and its
metadata checks, timed apart, retrieval by WADO-RS, then the same batch); and the retrieval's share of a scan's time: each
series retrieved by WADO-RS against the same series read from its folder,
measured in the same rounds.

Example::

    python projects/benchmarks/benchmark_archive.py --num-scans 6 \\
        --scan-size 256 60 --stand-in-ms 5 --stand-in-boxes 5 --repeats 3

``--num-scans`` synthetic chest scans of ``--scan-size``
(:mod:`~projects.benchmarks.synthetic_scans`) are written as DICOM series
(one file a slice, new UIDs) and uploaded to an Orthanc with its DICOMweb
plugin started on a free port (:mod:`tests.helpers.orthanc`; without
Orthanc the server rows are left out, saying why). The detector is the
stand-in of :mod:`~projects.benchmarks.stand_in_detector` (it waits
``--stand-in-ms`` per slice without holding the GIL, as a process waiting
for its GPU; 5 ms: 200 slices/s), registered and named by the config, so
that every job builds it as it would a real detector. Every run writes all
files (findings, pictures, report, DICOM SR); each of ``--repeats`` rounds
runs every mode once, each round starting one mode later than the one
before.

Printed: per mode the median (min-max) seconds per scan, scans per hour
and their ratio to the batch's in the same round; the seconds of a WADO-RS
retrieval and of a folder read per series, their ratio, and the
retrieval's share of the server run's time per scan; the threads, the CPU
and the machine's load before and after.
"""
# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[2])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Dict, List  # noqa: E402

from mmlesion_cli import tool_parser  # noqa: E402

DEMO_CFG = 'configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'
BASELINE = 'batch'
MODES = (BASELINE, 'jobs_1', 'jobs_2', 'server')
UID_ROOT = '1.2.826.0.1.3680043.8.498.9200'


def parse_args(argv=None) -> argparse.Namespace:
    parser = tool_parser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--num-scans', type=int, default=6,
                        help='synthetic scans (DICOM series)')
    parser.add_argument('--scan-size', type=int, nargs=2, default=[256, 60],
                        metavar=('XY', 'Z'),
                        help='in-plane pixels and slices of each scan')
    parser.add_argument('--stand-in-ms', type=float, default=5.,
                        help="the stand-in detector's milliseconds per slice")
    parser.add_argument('--stand-in-boxes', type=int, default=5,
                        help='boxes per slice the stand-in predicts')
    parser.add_argument('--pixel-spacing', type=float, default=1.,
                        help='mm per pixel the scans are resampled to')
    parser.add_argument('--repeats', type=int, default=3,
                        help='rounds (each runs every mode once)')
    parser.add_argument('--out', help='also write the results as JSON here')
    args = parser.parse_args(argv)
    if args.num_scans < 2 or args.repeats < 1:
        parser.error('--num-scans must be >= 2 and --repeats >= 1')
    return args


def _spread(values: List[float], digits: int = 3) -> str:
    return (f'{statistics.median(values):.{digits}f} '
            f'({min(values):.{digits}f}-{max(values):.{digits}f})')


def _load() -> str:
    return ', '.join(f'{v:.2f}' for v in os.getloadavg())


def _cpu() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            names = [line.split(':', 1)[1].strip() for line in f
                     if line.startswith('model name')]
        return f'{len(names)} x {names[0]}'
    except (OSError, IndexError):
        return platform.processor() or 'unknown'


def write_series(scans: List[str], folder: Path) -> List[Path]:
    """Each synthetic scan as a DICOM series folder (new UIDs, a patient
    and study each)."""
    from mmlesion.datasets.volumes import load_ct_volume
    from tests.helpers.orthanc import write_ct_series
    folders = []
    for i, scan in enumerate(scans):
        volume = load_ct_volume(scan)
        study = f'{UID_ROOT}.{i + 1}'
        target = folder / f'series_{i:02d}'
        write_ct_series(target, volume.array.round(),
                        tuple(volume.spacing_zyx[::-1]),
                        tuple(volume.origin_xyz),
                        dict(study=study, series=f'{study}.1'),
                        dict(PatientID=f'BENCH{i:02d}', StudyDate='20240110',
                             BodyPartExamined='CHEST'))
        folders.append(target)
    return folders


def stand_in_config(args: argparse.Namespace):
    """The demo config's pipeline with the stand-in as its model
    (registered in mmdet's ``MODELS``)."""
    from mmdet.registry import MODELS
    from mmengine.config import Config

    from projects.benchmarks.stand_in_detector import StandInDetector
    MODELS.register_module('StandInDetector', module=StandInDetector,
                           force=True)
    cfg = Config.fromfile(str(Path(_ROOT) / DEMO_CFG))
    cfg.model = dict(type='StandInDetector', ms=args.stand_in_ms,
                     boxes=args.stand_in_boxes)
    return cfg


def run_mode(mode: str, cfg, folders: List[str], out: Path, run,
             server) -> float:
    """One run of every scan in ``mode``, into ``out``; the seconds of
    the server's query and metadata checks (``server``; else 0)."""
    from mmlesion.apps.whole_scan.batch import run_batch_inference
    from mmlesion.apps.whole_scan.dicomweb_batch import (ServerOptions,
                                                         run_server_inference)
    from mmlesion.apps.whole_scan.server_source import find_series
    from mmlesion.apps.whole_scan.shards import (ShardedRun, ShardSettings,
                                                 run_sharded_inference)
    query = 0.
    if mode == BASELINE:
        rows = run_batch_inference(cfg, None, folders, str(out), run)
    elif mode.startswith('jobs_'):
        rows = run_sharded_inference(folders, ShardedRun(
            cfg, None, str(out), run,
            ShardSettings(jobs=int(mode[5:]), poll_seconds=0.1),
            log=lambda line: None))
    else:  # run_server_inference, its query timed apart
        start = time.perf_counter()
        transport = server.connect()
        found = find_series(transport, server.query)
        query = time.perf_counter() - start
        rows = run_server_inference(cfg,
                                    None,
                                    server,
                                    str(out),
                                    run,
                                    options=ServerOptions(found=found,
                                                          transport=transport))
    failed = [r for r in rows if r.status == 'failed']
    if failed or len(rows) != len(folders):
        raise RuntimeError(f'{mode}: {len(failed)} of {len(rows)} scans '
                           f'failed: {failed[:1]}')
    return query


def retrieval_seconds(server, folders: List[Path], tmp: Path) -> tuple:
    """Per series: seconds of a WADO-RS retrieval into a new folder and of
    reading the series' own folder."""
    from mmlesion.apps.whole_scan.server_source import (SeriesRef,
                                                        retrieve_series)
    from mmlesion.datasets.volumes import load_ct_volume
    transport = server.connect()
    fetch, read = [], []
    for i, folder in enumerate(folders):
        study = f'{UID_ROOT}.{i + 1}'
        target = tmp / 'retrieved'
        start = time.perf_counter()
        retrieve_series(transport, SeriesRef(study, f'{study}.1', 'CT'),
                        target)
        fetch.append(time.perf_counter() - start)
        start = time.perf_counter()
        load_ct_volume(str(folder))
        read.append(time.perf_counter() - start)
        shutil.rmtree(target)
    return fetch, read


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.apps.whole_scan.dicomweb_source import DicomWebSettings
    from mmlesion.apps.whole_scan.server_source import parse_query
    from mmlesion.apis.whole_scan.settings import (DetectionSettings,
                                                   RunSettings)
    from projects.benchmarks.synthetic_scans import write_synthetic_scans
    from tests.helpers.orthanc import (PASSWORD, USER, OrthancServer,
                                       orthanc_missing)
    load_before = _load()
    cfg = stand_in_config(args)
    run = RunSettings(detection=DetectionSettings(show_progress=False),
                      pixel_spacing=args.pixel_spacing, overwrite=True,
                      cfg_name=DEMO_CFG)
    missing = orthanc_missing()
    modes = [m for m in MODES if m != 'server' or not missing]
    seconds: Dict[str, List[float]] = {m: [] for m in modes}
    ratios: Dict[str, List[float]] = {m: [] for m in modes}
    fetch: List[float] = []
    read: List[float] = []
    queries: List[float] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        scans = write_synthetic_scans(tmp / 'scans', args.num_scans,
                                      *args.scan_size)
        folders = write_series(scans, tmp / 'series')
        server = orthanc = None
        if not missing:
            orthanc = OrthancServer(tmp / 'orthanc').__enter__()
            orthanc.upload([p for f in folders for p in sorted(f.iterdir())])
            server = DicomWebSettings(
                orthanc.dicomweb, parse_query(['StudyDate=20240110']),
                user=USER, password=PASSWORD, store_back=False)
        try:
            for r in range(args.repeats):
                order = modes[r % len(modes):] + modes[:r % len(modes)]
                this = {}
                for mode in order:
                    out = tmp / f'out_{mode}_{r}'
                    start = time.perf_counter()
                    query = run_mode(mode, cfg, [str(f) for f in folders],
                                     out, run, server)
                    this[mode] = (time.perf_counter() - start) / len(folders)
                    if mode == 'server':
                        queries.append(query / len(folders))
                    shutil.rmtree(out)
                for mode in modes:
                    seconds[mode].append(this[mode])
                    ratios[mode].append(this[BASELINE] / this[mode])
                if server is not None:
                    f, rd = retrieval_seconds(server, folders, tmp)
                    fetch += f
                    read += rd
        finally:
            if orthanc is not None:
                orthanc.__exit__(None, None, None)
    result = dict(
        command='python projects/benchmarks/benchmark_archive.py ' +
        ' '.join(argv if argv is not None else _sys.argv[1:]),
        num_scans=args.num_scans, scan_size_xy_z=list(args.scan_size),
        detector=f'stand-in, {args.stand_in_ms} ms per slice, '
        f'{args.stand_in_boxes} boxes per slice',
        threads=torch.get_num_threads(), cpu=_cpu(),
        load_before=load_before, load_after=_load(),
        seconds_per_scan={m: seconds[m] for m in modes},
        scans_per_hour_vs_batch={m: ratios[m] for m in modes},
        server_missing=missing, query_seconds_per_series=queries,
        retrieval_seconds=fetch,
        folder_read_seconds=read)
    _print(result, modes)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return result


def _print(result: dict, modes: List[str]) -> None:
    print(f"{result['command']}\n{result['num_scans']} scans of "
          f"{result['scan_size_xy_z']} (x/y, z), {result['detector']}; "
          f"{result['threads']} torch threads; {result['cpu']}; load "
          f"{result['load_before']} before, {result['load_after']} after")
    print('| mode | s per scan | scans per hour | / batch (per round) |\n'
          '| --- | --- | --- | --- |')
    for mode in modes:
        s = result['seconds_per_scan'][mode]
        print(f'| {mode} | {_spread(s)} | '
              f'{3600 / statistics.median(s):.0f} | '
              f"{_spread(result['scans_per_hour_vs_batch'][mode], 2)}x |")
    if result['server_missing']:
        print(f"server rows left out: {result['server_missing']}")
        return
    fetch, read = result['retrieval_seconds'], result['folder_read_seconds']
    runs = result['seconds_per_scan']
    server = statistics.median(runs['server'])
    extra = [(s - b) / s for s, b in zip(runs['server'], runs[BASELINE])]
    print(f'per series: WADO-RS retrieval {_spread(fetch)} s, folder read '
          f'{_spread(read)} s ('
          f'{statistics.median(fetch) / statistics.median(read):.2f}x); '
          f'the retrieval is {100 * statistics.median(fetch) / server:.0f} % '
          f"of the server run's {server:.3f} s per scan; the server run's "
          'time beyond the batch is '
          f'{100 * statistics.median(extra):.0f} % of it (per round: '
          f'{100 * min(extra):.0f}-{100 * max(extra):.0f} %); the query '
          'and its metadata checks (QIDO-RS, every instance) '
          f"{_spread(result['query_seconds_per_series'])} s per series")


if __name__ == '__main__':
    main()
