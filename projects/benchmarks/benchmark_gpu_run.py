# Copyright (c) mmlesion contributors. All rights reserved.
"""Every GPU figure of ``docs/benchmarks.md`` in one call, kept part by
part: one JSON and one markdown table, written again after every step.

The parts (:mod:`projects.benchmarks.gpu_run_parts`; their sizes:
:mod:`projects.benchmarks.gpu_run_plan`), in this order:

1. ``amp_compare``: the full-size ElixirNet's findings under float16
   autocast against float32 on the same scans
   (``compare_amp_findings.py``).
2. ``whole_scan``: that detector over a whole 300 x 512 x 512 scan, batch
   32, one slice worker, float32 and AMP (``benchmark_infer_volume.py``):
   the detector's slices/s and read -> resample -> detect -> stack.
3. ``infer_scans``: a batch of the same scans through the real detector
   as ``tools/infer_volume.py --scan-list`` runs it, files written
   (``benchmark_infer_scans.py``; AMP where ``amp_compare`` found the same
   findings), with the parts of a scan one step after another.
4. ``aggregated3d``: the 3D Aggregated Faster R-CNN per LUNA16-size scan,
   AMP and float32 (``benchmark_aggregated3d_scan.py``).
5. ``train_steps``: the training step of every full-size 2.5D config
   (Faster R-CNN, ElixirNet 3 and 9 slices, Improved RetinaNet, RetinaNet
   VGG-19, MULAN, LENS with 1 and 4 experts) beside mmdet's Faster R-CNN
   R50-FPN on the same input (:func:`~mmlesion.apps.reproduce.timing.
   time_training_step`: synthetic batches, random weights, each config's
   own optimiser wrapper, float32 in all of them).
6. ``data_loading``: one loading worker's samples/s per config and the
   workers a GPU needs at the step time of part 5
   (``benchmark_data_loading.py --parts --with-loader``).

The whole-scan parts share their inputs, made once into ``OUT/cache/``:
the synthetic scans (seed 0) and the detector's random weights (seed 0)
saved with an operating point that keeps the 20 best findings of the first
scan (random weights score thousands of boxes alike; a trained model at
its operating point keeps a few per scan). ``OUT/results.json`` holds the
record, ``OUT/results.md`` the table (the three goals with their verdicts
and, where one is missed, the part that takes the time: read, preprocess,
detector, postprocess or write), ``OUT/raw/`` each benchmark's own JSON.

**Stopped and resumed.** The record is written atomically after every
sub-step (a precision, a config): a run stopped at any moment keeps what
it measured, and the same command again skips what is done. A re-run with
another plan or device into the same ``--out`` is refused.

**Time.** Each part has a budget (:data:`~projects.benchmarks.
gpu_run_plan.FULL`: 530 s in all, the parts estimated at about 300 s from
the H100 figures): a part that has used its budget starts no further
sub-step, one that runs 1.5 times its budget is stopped, and with
``--deadline S`` a part whose budget no longer fits the seconds left is
not started (a re-run does it). ``--parts`` runs some parts only.
Progress lines start with ``[gpu-run]``.

The device command (one line, for a machine lent with no network, whose
commands may take 600 s and whose ``$OUT`` folder comes back: ``.gpu/`` is
the offline wheel folder with mmcv's source and ``setup.sh``, which builds
mmcv's CUDA ops in 4-5 min; on a machine with network ``bash
tools/install_gpu.sh`` does the same). If the deadline leaves parts
undone, run the same line again on the same machine: setup then skips the
build and the script resumes::

    bash .gpu/setup.sh && timeout $((590 - SECONDS)) python projects/benchmarks/benchmark_gpu_run.py --device cuda --out work_dirs/gpu_run --deadline $((570 - SECONDS)); cp -r work_dirs/gpu_run/results.json work_dirs/gpu_run/results.md work_dirs/gpu_run/raw "$OUT"/

The CPU rehearsal (demo-size models, tiny scans, one or two iterations;
every part but AMP)::

    python projects/benchmarks/benchmark_gpu_run.py --device cpu --tiny \\
        --out work_dirs/gpu_run_tiny
"""
# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[2])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Iterator, List, Optional  # noqa: E402

from mmlesion_cli import tool_parser  # noqa: E402
from projects.benchmarks.gpu_run_parts import (PART_FUNCTIONS,  # noqa: E402
                                               PartRun, prepare)
from projects.benchmarks.gpu_run_plan import (PARTS, PLANS,  # noqa: E402
                                              plan_record, sub_steps)

#: A part is stopped at this many times its budget.
HARD_FACTOR = 1.5
#: Seconds kept before ``--deadline`` for writing the record and table.
MARGIN_S = 5.
RECORD, TABLE = 'results.json', 'results.md'


class PartTimeout(BaseException):
    """A part ran past its hard limit (a BaseException: no ``except
    Exception`` of a benchmark takes it for its own error)."""


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('--device', default='cuda', choices=['cuda', 'cpu'],
                        help='where the models run')
    parser.add_argument('--tiny', action='store_true',
                        help='the CPU rehearsal: demo-size models, tiny '
                        'scans, one or two iterations')
    parser.add_argument('--out', default='work_dirs/gpu_run',
                        help='the record, the table, the raw JSON files and '
                        'the cached inputs (a re-run resumes here)')
    parser.add_argument('--parts', nargs='+', choices=PARTS,
                        default=list(PARTS),
                        help='the parts to run (in their fixed order)')
    parser.add_argument('--deadline', type=float, metavar='S',
                        help='seconds this call may take: parts whose '
                        'budget does not fit what is left are not started')
    args = parser.parse_args(argv)
    if args.deadline is not None and not args.deadline > MARGIN_S:
        parser.error(f'--deadline must be more than {MARGIN_S:g} s, got '
                     f'{args.deadline:g}')
    return args


@contextlib.contextmanager
def hard_limit(seconds: Optional[float]) -> Iterator[None]:
    """Raise :class:`PartTimeout` in the block after ``seconds`` (SIGALRM;
    not in a thread other than the main one, nor where there is none, nor
    while a timer of the caller's runs: it is left alone)."""
    usable = (seconds is not None and hasattr(signal, 'setitimer')
              and threading.current_thread() is threading.main_thread()
              and signal.getitimer(signal.ITIMER_REAL)[0] == 0)
    if not usable:
        yield
        return

    def stop(signum, frame):
        raise PartTimeout(f'stopped after {seconds:.1f} s')

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, .001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (``timeout``'s signal) stops the run as Ctrl-C does: the
    running part is recorded as stopped before the process ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f'signal {signum}')

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        '%Y-%m-%d %H:%M:%S UTC')


def _machine(device: str) -> dict:
    import torch

    from mmlesion.apps.reproduce.timing import device_name
    return dict(device_name=device_name(device), torch=torch.__version__,
                cuda=torch.version.cuda, cpus=os.cpu_count(),
                threads=torch.get_num_threads())


class GpuRun:
    """The record of a run in ``out`` and its writing (module doc).

    Args:
        args (Namespace): the parsed options.
        command (str): the command line, for the table.

    Raises:
        ValueError: ``out`` holds a record of another plan or device, or
            one that cannot be read.
    """

    def __init__(self, args: argparse.Namespace, command: str) -> None:
        self.args = args
        self.plan = PLANS['tiny' if args.tiny else 'full']
        self.out = Path(args.out)
        self.command = command
        self.start = time.monotonic()
        path = self.out / RECORD
        # as the record reads back (tuples as lists)
        expected = json.loads(json.dumps(dict(plan=plan_record(self.plan),
                                              device=args.device)))
        if path.is_file():
            try:
                record = json.loads(path.read_text())
            except ValueError as err:
                raise ValueError(f'{path}: not a record of this script '
                                 f'({err}); remove it or give another '
                                 '--out') from None
            if {k: record.get(k) for k in expected} != expected:
                other = (record.get('plan') or {}).get('name')
                raise ValueError(
                    f'{path}: a run of plan {other!r} on '
                    f'{record.get("device")!r}, not of plan '
                    f'{self.plan.name!r} on {args.device!r} with this '
                    "script's sizes: give another --out or remove that "
                    'folder')
        else:
            record = dict(expected, version=1, prepared=None, parts={},
                          runs=[])
        self.record = record
        record['runs'].append(dict(started=_now(), parts=args.parts,
                                   deadline_s=args.deadline,
                                   **_machine(args.device)))

    def left(self) -> Optional[float]:
        """Seconds left before the deadline (less the margin), or None."""
        if self.args.deadline is None:
            return None
        return (self.args.deadline - MARGIN_S -
                (time.monotonic() - self.start))

    def save(self) -> None:
        """Write the record and the table (each atomically)."""
        from mmlesion.utils.writing.atomic import (atomic_write_json,
                                                   atomic_write_text)
        from projects.benchmarks.gpu_run_report import markdown
        self.record['runs'][-1]['finished'] = _now()
        atomic_write_json(str(self.out / RECORD), self.record, indent=1)
        atomic_write_text(str(self.out / TABLE),
                          markdown(self.record, self.command))

    def _limit(self, budget: float) -> float:
        left = self.left()
        return budget * HARD_FACTOR if left is None else min(
            budget * HARD_FACTOR, left)

    def _prepared(self) -> bool:
        """Make the shared inputs unless the record has them (and they
        are still there)."""
        prepared = self.record.get('prepared')
        if prepared and all(os.path.exists(p) for p in
                            prepared['scans'] + [prepared['checkpoint']]):
            return True
        budget = self.plan.budgets['prepare']
        left = self.left()
        if left is not None and left < budget:
            print(f'[gpu-run] preparing the inputs needs up to {budget:g} s,'
                  f' {left:.0f} s left: nothing run', flush=True)
            return False
        print(f'[gpu-run] preparing the scans and the weights (budget '
              f'{budget:g} s) ...', flush=True)
        started = time.monotonic()
        with hard_limit(self._limit(budget)):
            self.record['prepared'] = prepare(self.plan, self.args.device,
                                              self.out / 'cache')
        self.record['prepared']['seconds'] = time.monotonic() - started
        self.save()
        return True

    def run(self) -> dict:
        """Run the selected parts not done yet; the record."""
        self.out.mkdir(parents=True, exist_ok=True)
        self.save()
        whole_scan = {'amp_compare', 'whole_scan', 'infer_scans'}
        selected = [p for p in PARTS if p in self.args.parts]
        todo = [p for p in selected if self.record['parts'].get(
            p, {}).get('status') != 'done']
        why = 'the inputs are not prepared'
        try:
            ready = not whole_scan & set(todo) or self._prepared()
        except (Exception, PartTimeout) as err:  # noqa: B902
            traceback.print_exc()
            ready, why = False, ('preparing the inputs failed: '
                                 f'{type(err).__name__}: {err}'
                                 .splitlines()[0][:300])
        for i, name in enumerate(selected, 1):
            part = self.record['parts'].setdefault(name, dict(
                status='not started', seconds=0., results={}))
            part['budget_s'] = budget = self.plan.budgets[name]
            if name not in todo:
                print(f'[gpu-run] {i}/{len(selected)} {name}: done in an '
                      'earlier run, skipped', flush=True)
                continue
            left = self.left()
            if name in whole_scan and not ready:
                part['note'] = f'not started: {why}'
            elif left is not None and left < budget:
                part['note'] = (f'not started: {left:.0f} s left, its '
                                f'budget is {budget:g} s; run again')
            else:
                self._run_part(name, part, i, len(selected))
                continue
            print(f"[gpu-run] {i}/{len(selected)} {name}: {part['note']}",
                  flush=True)
            self.save()
        self.save()
        return self.record

    def _run_part(self, name: str, part: dict, i: int, n: int) -> None:
        budget = part['budget_s']
        left = self.left()
        print(f'[gpu-run] {i}/{n} {name}: budget {budget:g} s'
              + ('' if left is None else f', {left:.0f} s left') + ' ...',
              flush=True)
        part.update(status='running', run=len(self.record['runs']), note='')
        self.save()
        started = time.monotonic()
        steps = sub_steps(self.plan, name, self.args.device)
        run = PartRun(self.plan, self.args.device, self.out,
                      self.record['prepared'], part['results'], self.save,
                      lambda: time.monotonic() - started > budget,
                      self.record['parts'], steps)
        try:
            with hard_limit(self._limit(budget)):
                PART_FUNCTIONS[name](run)
            left_over = run.todo()
            part['status'] = 'partial' if left_over else 'done'
            failed = [k for k, v in part['results'].items()
                      if v.get('error')]
            part['note'] = '; '.join(
                ([f'failed (see its table): {", ".join(failed)}']
                 if failed else []) +
                ([f'over its budget: {", ".join(left_over)} left for a '
                  're-run'] if left_over else []))
        except PartTimeout as err:
            part.update(status='partial', note=f'{err}: '
                        f'{", ".join(run.todo())} left for a re-run')
        except KeyboardInterrupt:
            part.update(status='stopped', note='interrupted')
            raise
        except Exception as err:  # noqa: B902  (one part's failure)
            traceback.print_exc()
            part.update(status='failed', note=f'{type(err).__name__}: '
                        f'{err}'.splitlines()[0][:300])
        finally:
            part['seconds'] = part.get('seconds', 0.) + (time.monotonic() -
                                                         started)
            self.save()
            print(f"[gpu-run] {name}: {part['status']} after "
                  f"{time.monotonic() - started:.1f} s"
                  + (f" ({part['note']})" if part.get('note') else ''),
                  flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    import torch

    from projects.benchmarks.gpu_run_report import goals
    if args.device == 'cuda' and not torch.cuda.is_available():
        print('error: --device cuda: torch sees no CUDA device here (the '
              'CPU rehearsal: --device cpu --tiny)', file=_sys.stderr)
        return 2
    command = shlex.join(['python', 'projects/benchmarks/benchmark_gpu_run.py',
                          *(_sys.argv[1:] if argv is None else argv)])
    try:
        gpu_run = GpuRun(args, command)
    except ValueError as err:
        print(f'error: {err}', file=_sys.stderr)
        return 2
    with _terminate_as_interrupt():
        record = gpu_run.run()
    print(f'[gpu-run] {Path(args.out) / TABLE}:')
    for goal in goals(record):
        print(f'  {goal.verdict:12s} {goal.goal}: {goal.measured}'
              + (f' ({goal.time_goes})' if goal.verdict == 'NOT MET'
                 else ''))
    undone = [p for p in args.parts
              if record['parts'][p]['status'] != 'done']
    if undone:
        print(f"[gpu-run] not done: {', '.join(undone)}: run the same "
              'command again to resume')
    return 1 if undone else 0


if __name__ == '__main__':
    _sys.exit(main())
