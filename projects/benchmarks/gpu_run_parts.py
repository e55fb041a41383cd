# Copyright (c) mmlesion contributors. All rights reserved.
"""The parts of ``benchmark_gpu_run.py``: how each measures (the sizes are
its :class:`~projects.benchmarks.gpu_run_plan.Plan`'s), and the inputs they
share (:func:`prepare`).

Every part runs the benchmark scripts of this folder through their own
functions (their ``main`` with the arguments a user would type, or the
functions they are built of) and keeps a small summary of each sub-step
(a precision, a config) through :class:`PartRun`, which the runner writes
at once: a stopped run keeps every finished sub-step, and a re-run skips
them.

- ``amp_compare``: :func:`~projects.benchmarks.compare_amp_findings.
  compare_scans` on the prepared scans, float32 against float16 autocast
  (on a CPU, float32 against itself: autocast hands mmcv's CPU NMS boxes
  it refuses, so only the comparison is rehearsed there).
- ``whole_scan``: ``benchmark_infer_volume.py`` on the first scan, batch
  ``Plan.batch_size``, 1 slice worker, float32 and AMP (CUDA only).
- ``infer_scans``: ``benchmark_infer_scans.py`` with the real detector and
  the prepared weights, kept at their operating point (AMP where
  ``amp_compare`` found the same findings).
- ``aggregated3d``: ``benchmark_aggregated3d_scan.py`` on a LUNA16-size
  scan, AMP and float32 (CUDA; float32 only on a CPU).
- ``train_steps``: :func:`~mmlesion.apps.reproduce.timing.time_training_step`
  of every 2.5D config of :attr:`Plan.train` and of mmdet's Faster R-CNN
  R50-FPN on the same input.
- ``data_loading``: ``benchmark_data_loading.py --parts --with-loader``
  per config: one worker's samples/s and the workers a GPU needs at the
  step time ``train_steps`` measured (else the documented H100 time).
"""
import contextlib
import dataclasses
import os
import shutil
import statistics
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

from projects.benchmarks.gpu_run_plan import Plan, TrainConfig

#: AMP gives "the same findings" when every float32 finding at or above
#: the operating point has an AMP finding of 3D IoU >= MATCH_IOU and none
#: is left on either side, and the scores of the pairs differ by at most
#: MATCH_SCORE_TOL.
MATCH_IOU = .5
MATCH_SCORE_TOL = .01


class PartRun:
    """What a part gets from the runner.

    Args:
        plan (Plan): the sizes.
        device (str): ``'cpu'`` or ``'cuda'``.
        folder (Path): the run's output folder (``cache/`` and ``raw/``
            below it).
        prepared (dict): :func:`prepare`'s record.
        results (dict): the part's sub-step summaries so far (changed in
            place).
        save (callable): writes the run's record (after each sub-step).
        over_budget (callable): whether the part has used its budget.
        earlier (dict): the other parts' records (e.g. ``amp_compare``'s
            verdict for ``infer_scans``).
        steps (list[str]): the part's sub-steps (:func:`sub_steps`).
    """

    def __init__(self, plan: Plan, device: str, folder: Path,
                 prepared: dict, results: dict, save: Callable[[], None],
                 over_budget: Callable[[], bool],
                 earlier: Mapping[str, dict], steps: List[str]) -> None:
        self.plan = plan
        self.steps = steps
        self.device = device
        self.folder = folder
        self.prepared = prepared
        self.results = results
        self._save = save
        self.over_budget = over_budget
        self.earlier = earlier

    @property
    def cuda(self) -> bool:
        return self.device.startswith('cuda')

    def raw(self, name: str) -> str:
        """A file of ``raw/`` for a benchmark's own ``--json``."""
        path = self.folder / 'raw' / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path)

    def todo(self) -> List[str]:
        """The sub-steps not measured yet, in order."""
        return [k for k in self.steps if k not in self.results]

    def keep(self, key: str, summary: dict) -> None:
        """Record a sub-step's summary and write the run's record."""
        self.results[key] = summary
        self._save()


def detector_args(plan: Plan, prepared: dict) -> List[str]:
    """The detector options every whole-scan benchmark takes."""
    return ['--config', plan.detector_config, '--checkpoint',
            prepared['checkpoint'], '--pixel-spacing',
            str(plan.pixel_spacing)]


def _run_settings(plan: Plan, device: str):
    from mmlesion.apis.whole_scan.settings import (DetectionSettings,
                                                   RunSettings)
    return RunSettings(
        detection=DetectionSettings(batch_size=plan.batch_size,
                                    show_progress=False),
        pixel_spacing=plan.pixel_spacing, device=device,
        cfg_name=plan.detector_config)


def _load_detector(plan: Plan, device: str, checkpoint: Optional[str]):
    """The detector (eval mode) and its volume settings."""
    from mmengine.config import Config

    from mmlesion.apis.detector_loader import (DetectorLoadSettings,
                                               init_lesion_detector)
    from mmlesion.apis.whole_scan.run import volume_run_config
    run = _run_settings(plan, device)
    run_config = volume_run_config(Config.fromfile(plan.detector_config),
                                   run, checkpoint)
    model = init_lesion_detector(run_config.cfg, checkpoint,
                                 DetectorLoadSettings(device=device),
                                 preloaded=run_config.checkpoint).model
    model.eval()
    return model, run_config.settings, run.detection


def prepare(plan: Plan, device: str, cache: Path) -> dict:
    """The inputs the whole-scan parts share, made once into ``cache``.

    ``plan.num_scans`` synthetic scans (seed 0, as every whole-scan
    benchmark makes them); the detector's random weights (seed 0) saved as
    a checkpoint whose record keeps the ``plan.findings_per_scan`` best
    findings of the first scan at the default operating point (random
    weights score thousands of boxes alike: without it every finding would
    be measured and drawn, which no trained model asks for); the
    resampled slices of each scan.

    Returns:
        dict: ``scans``, ``slices``, ``checkpoint``, ``keep_thr``,
        ``findings_kept``, ``findings_stacked``.
    """
    import torch

    from mmlesion.apis.whole_scan.infer import ScanSteps, infer_volume
    from mmlesion.apis.whole_scan.resample import prepare_volume
    from mmlesion.apis.whole_scan.settings import DEFAULT_FP_RATE
    from mmlesion.datasets.volumes import load_ct_volume
    from mmlesion.evaluation.functional.operating_points import (
        OPERATING_POINTS_KEY, OperatingPoints)
    from mmlesion.utils import write_checksum
    from mmlesion.utils.writing.atomic import atomic_save_with
    from projects.benchmarks.synthetic_scans import write_synthetic_scans
    scans_dir = cache / 'scans'
    if not scans_dir.is_dir():  # written whole, then renamed
        partial = cache / 'scans.partial'
        shutil.rmtree(partial, ignore_errors=True)
        write_synthetic_scans(partial, plan.num_scans, *plan.scan_size)
        os.replace(partial, scans_dir)
    scans = sorted(str(p) for p in scans_dir.rglob('*.mhd'))
    if len(scans) != plan.num_scans:
        raise RuntimeError(f'{scans_dir}: {len(scans)} scans, expected '
                           f'{plan.num_scans}: remove the folder and run '
                           'again')
    torch.manual_seed(0)
    model, settings, detection = _load_detector(plan, device, None)
    slices, scores = [], []
    for i, scan in enumerate(scans):
        volume = load_ct_volume(scan)
        if i:
            slices.append(prepare_volume(volume, settings).shape_zyx[0])
            continue
        with torch.no_grad():
            result = infer_volume(model, volume, settings, detection,
                                  steps=ScanSteps(measure=False))
        slices.append(result.resampled.shape_zyx[0])
        scores = sorted((f.score for f in result.findings), reverse=True)
    kept = min(plan.findings_per_scan, len(scores))
    keep_thr = float(scores[kept - 1]) if kept else detection.score_thr
    checkpoint = cache / 'random_weights.pth'
    points = OperatingPoints('image', [DEFAULT_FP_RATE], [keep_thr],
                             metric='gpu-run: random weights, the best '
                             f'{kept} findings of the first scan')
    meta = {OPERATING_POINTS_KEY: points.to_dict()}
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    atomic_save_with(str(checkpoint), lambda path: torch.save(
        dict(state_dict=state, meta=meta), path))
    write_checksum(str(checkpoint))  # the loader verifies it
    return dict(scans=scans, slices=slices, checkpoint=str(checkpoint),
                keep_thr=keep_thr, findings_kept=kept,
                findings_stacked=len(scores), meta=meta)


def amp_matches(confident: Mapping[str, Any]) -> bool:
    """The criterion of :data:`MATCH_SCORE_TOL` on the findings at or above
    the operating point (an :class:`~projects.benchmarks.
    compare_amp_findings.Agreement` as a dict)."""
    return (confident['fp32'] == confident['amp'] == confident['matched']
            and (confident['score_diff_max'] or 0.) <= MATCH_SCORE_TOL)


def part_amp_compare(run: PartRun) -> None:
    """float32 against AMP on the prepared scans (see the module doc)."""
    import torch

    from projects.benchmarks.compare_amp_findings import compare_scans
    if not run.todo():
        return
    model, settings, detection = _load_detector(
        run.plan, run.device, run.prepared['checkpoint'])

    def amp():
        if run.cuda:
            return torch.autocast(device_type='cuda', dtype=torch.float16)
        return contextlib.nullcontext()

    comparison = compare_scans(model, run.prepared['scans'], settings,
                               detection, amp, MATCH_IOU,
                               run.prepared['keep_thr'])
    found = dataclasses.asdict(comparison)
    run.keep('scans', dict(
        amp_active=run.cuda, amp_dtype='float16', iou=MATCH_IOU,
        score_thr=run.prepared['keep_thr'], all=found['all'],
        confident=found['confident'],
        match=amp_matches(found['confident']),
        criterion=f'every finding scoring >= the operating point paired at '
        f'3D IoU >= {MATCH_IOU:g}, none left on either side, scores within '
        f'{MATCH_SCORE_TOL:g}'))


def part_whole_scan(run: PartRun) -> None:
    """``benchmark_infer_volume.py`` per precision on the first scan."""
    from projects.benchmarks import benchmark_infer_volume
    plan = run.plan
    for precision in run.todo():
        if run.over_budget():
            return
        r = benchmark_infer_volume.main(
            detector_args(plan, run.prepared) + [
                '--scan', run.prepared['scans'][0], '--batch-sizes',
                str(plan.batch_size), '--workers', '1', '--repeats',
                str(plan.repeats), '--device', run.device, '--json',
                run.raw(f'whole_scan_{precision}.json')] +
            (['--amp'] if precision == 'amp' else []))
        new, earlier = r['whole_runs']['new/1'], r['whole_runs']['today/1']
        seconds = new['seconds']
        run.keep(precision, dict(
            amp_active=precision == 'amp',
            num_slices=r['num_slices'], batch_size=plan.batch_size,
            workers=1, detector_slices_per_second=r['by_workers'][1][
                'batches'][plan.batch_size]['slices_per_second'],
            pipeline_slices_per_second=r['by_workers'][1][
                'pipeline_slices_per_second'],
            seconds=new['median_seconds'], spread=[min(seconds),
                                                   max(seconds)],
            slices_per_second=r['num_slices'] / new['median_seconds'],
            parts=new['parts'],
            earlier_path_seconds=earlier['median_seconds']))


@contextlib.contextmanager
def _validated_operating_point(meta: Mapping, checkpoint: str):
    """Make a run whose model is given keep the findings at the
    checkpoint's operating point.

    ``benchmark_infer_scans.py`` hands ``run_batch_inference`` the model it
    timed, and a given model comes without its checkpoint's record, so the
    batch would keep every finding; here the record is read as
    ``tools/infer_volume.py`` reads it from the same checkpoint (as
    ``infer_scans_operating_point.py`` sets a validated point).
    """
    from unittest import mock

    from mmlesion.apis.whole_scan import run as scan_run
    choose = scan_run.choose_operating_point

    def recorded(checkpoint_meta, run_settings, path=None):
        return choose(checkpoint_meta or meta, run_settings,
                      path or checkpoint)

    with mock.patch.object(scan_run, 'choose_operating_point', recorded):
        yield


def part_infer_scans(run: PartRun) -> None:
    """``benchmark_infer_scans.py`` with the real detector (module doc)."""
    from projects.benchmarks import benchmark_infer_scans
    if not run.todo():
        return
    plan, prepared = run.plan, run.prepared
    compared = (run.earlier.get('amp_compare', {}).get('results', {})
                .get('scans'))
    amp = bool(run.cuda and compared and compared['amp_active']
               and compared['match'])
    why = ('AMP: its findings matched float32\'s (amp_compare)' if amp else
           'float32: ' + ('autocast is CUDA only' if not run.cuda else
                          'amp_compare not run' if not compared else
                          'AMP\'s findings differed from float32\'s'))
    with _validated_operating_point(prepared['meta'],
                                    prepared['checkpoint']):
        r = benchmark_infer_scans.main(
            detector_args(plan, prepared) + [
                '--num-scans', str(plan.num_scans), '--scan-size',
                *map(str, plan.scan_size), '--batch-size',
                str(plan.batch_size), '--workers', '1', '--schedules',
                '--change-rounds', '0', '--repeats', str(plan.repeats),
                '--device', run.device, '--json',
                run.raw('infer_scans.json')] + (['--amp'] if amp else []))
    slices = statistics.mean(prepared['slices'])
    overlapped = r['schedules']['overlapped']
    per_scan = [v / r['num_scans'] for v in overlapped['batch_seconds']]
    run.keep('batch', dict(
        amp_active=amp, precision=why, num_scans=r['num_scans'],
        slices_per_scan=slices, seconds_per_scan=overlapped[
            'seconds_per_scan'], spread=[min(per_scan), max(per_scan)],
        slices_per_second=slices / overlapped['seconds_per_scan'],
        one_after_another_seconds_per_scan=r['schedules'][
            'one_after_another']['seconds_per_scan'],
        detector_seconds_per_scan=r['model_seconds_per_scan'],
        parts={k: v['wall'] for k, v in r['scan_parts'].items()},
        same_findings=r['same_findings'], keep_thr=prepared['keep_thr'],
        findings_kept_first_scan=prepared['findings_kept']))


def part_aggregated3d(run: PartRun) -> None:
    """``benchmark_aggregated3d_scan.py``, AMP then float32 (AMP on CUDA
    only)."""
    from projects.benchmarks import benchmark_aggregated3d_scan as agg3d
    plan = run.plan
    for precision in run.todo():
        if run.over_budget():
            return
        r = agg3d.main(
            ['--config', plan.agg3d_config, '--scan-size',
             *map(str, plan.agg3d_scan_size), '--device', run.device,
             '--repeats', str(plan.agg3d_repeats), '--warmup', '1', '--json',
             run.raw(f'aggregated3d_{precision}.json')] +
            (['--amp'] if precision == 'amp' else []))
        run.keep(precision, dict(
            amp_active=r['amp'], scan_zyx=r['scan_zyx'],
            lung_crop_zyx=r['lung_crop_zyx'], windows=r['windows'],
            seconds_per_scan=r['seconds_per_scan'],
            rpn_seconds_per_scan=r['seconds_per_scan_rpn']['median'],
            parts={k: r['parts'][k]['median'] for k in agg3d.PARTS}))


def baseline_config(train: TrainConfig, cache: Path) -> str:
    """A config file of ``train.model_from``'s model on ``train.config``'s
    input and optimiser (written into ``cache``)."""
    from mmengine.config import Config

    from projects.benchmarks.benchmark_elixirnet import baseline_model_cfg
    cfg = Config.fromfile(train.config)
    cfg.model = baseline_model_cfg(train.model_from)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / ('baseline_' + Path(train.config).name)
    cfg.dump(str(path))
    return str(path)


def part_train_steps(run: PartRun) -> None:
    """The training step of every config of ``Plan.train``."""
    from mmlesion.apps.reproduce.timing import (load_training_config,
                                                time_training_step,
                                                training_input)
    plan = run.plan
    by_name = {t.name: t for t in plan.train}
    for name in run.todo():
        if run.over_budget():
            return
        train = by_name[name]
        print(f'[gpu-run] training step: {name} ({train.config}'
              + (f', the model of {train.model_from}' if train.model_from
                 else '') + ')', flush=True)
        try:
            config = (baseline_config(train, run.folder / 'cache')
                      if train.model_from else train.config)
            spec = training_input(load_training_config(config))
            seconds = time_training_step(config, (), run.device,
                                         plan.train_iters, plan.train_warmup)
        except Exception as err:  # noqa: B902  (the table says why)
            run.keep(name, dict(config=train.config, error=_one_line(err)))
            continue
        run.keep(name, dict(
            config=train.config, model_from=train.model_from,
            batch_size=spec.batch_size, input=list(spec.shape),
            ms_per_image=1000 * seconds, step_s=seconds * spec.batch_size,
            iters=plan.train_iters, warmup=plan.train_warmup))


@contextlib.contextmanager
def _threads_kept():
    """torch's and OpenCV's thread counts as they were (``--parts`` of
    ``benchmark_data_loading.py`` sets both to 1)."""
    import cv2
    import torch
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)


def part_data_loading(run: PartRun) -> None:
    """One loading worker's samples/s per config and the workers a GPU
    needs at the measured step (module doc)."""
    from mmengine.config import Config

    from mmlesion.utils import get_tool_logger
    from projects.benchmarks import benchmark_data_loading as loading
    plan = run.plan
    steps = run.earlier.get('train_steps', {}).get('results', {})
    by_name = {c.name: c for c in plan.loading}
    logger = get_tool_logger('benchmark_gpu_run')
    for name in run.todo():
        if run.over_budget():
            return
        item = by_name[name]
        step = steps.get(name, {})
        measured = step.get('ms_per_image')
        argv = [item.config, '--parts', '--with-loader', '--samples',
                str(plan.loading_samples), '--warmup',
                str(plan.loading_warmup)]
        if measured:
            argv += ['--gpu-ms-per-image', f'{measured:.6g}']
        if item.recist_cache:
            argv.append('--recist-cache')
        try:
            with _threads_kept():
                res = loading.measure_parts(loading.parse_args(argv),
                                            Config.fromfile(item.config),
                                            logger)
        except (FileNotFoundError, ValueError) as err:
            run.keep(name, dict(config=item.config, error=_one_line(err)))
            continue
        print(loading.report_parts(res), flush=True)
        shares = res.parts.shares()
        need = dataclasses.asdict(res.need) if res.need else None
        if need is not None:
            need['gpu_time'] = (f'measured here ({run.device})' if measured
                                else 'documented H100 time')
        run.keep(name, dict(
            config=item.config, data=res.data,
            recist_cache=item.recist_cache,
            samples_per_s_per_worker=res.samples_per_s_per_worker,
            in_process_samples_per_s=res.in_process_samples_per_s,
            shares=shares, largest_part=max(shares, key=shares.get),
            need=need))


def _one_line(err: BaseException) -> str:
    return f'{type(err).__name__}: {err}'.splitlines()[0][:300]


#: name -> the function that measures it.
PART_FUNCTIONS: Dict[str, Callable[[PartRun], None]] = dict(
    amp_compare=part_amp_compare, whole_scan=part_whole_scan,
    infer_scans=part_infer_scans, aggregated3d=part_aggregated3d,
    train_steps=part_train_steps, data_loading=part_data_loading)
