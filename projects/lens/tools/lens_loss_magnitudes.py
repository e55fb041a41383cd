# Copyright (c) mmlesion contributors. All rights reserved.
"""Each loss term of a LENS (or MULAN baseline) demo config at
initialisation and after N training iterations (LENS Eq. 1 balance).

Generates the two demo sets (partially labelled + lung-only, as
``projects/lens/tools/lens_demo.py``) into ``--work-dir``, trains the tiny demo model of
``--config`` for ``--iters`` iterations with mmengine's Runner and prints,
for every loss the model returns, its value at iteration 1 (the
initialisation: the loss of the first batch, before any update) and its
mean over the last ``--window`` iterations, as a Markdown table (also
written to ``loss_magnitudes.{md,json}`` in the work dir).
``--cfg-options`` changes the config (e.g. to measure an old loss setting).

Example::

    OMP_NUM_THREADS=1 python projects/lens/tools/lens_loss_magnitudes.py \\
        --work-dir /tmp/lens_losses --iters 100 --seed 0
"""

# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[3])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
import argparse
import json
import os
import os.path as osp
import statistics
import sys
from typing import Dict, List

from mmlesion_cli import tool_parser
from mmlesion_cli.common_args import add_cfg_options_argument


def loss_recorder():
    """A hook that keeps every iteration's loss values (``outputs`` of the
    train step) in its ``history`` list.

    Returns:
        Hook: the hook (its class is made here, after mmengine is imported,
        so that ``--help`` does not import torch).
    """
    from mmengine.hooks import Hook

    class LossRecorder(Hook):
        """Keeps every iteration's loss values (``outputs`` of the train
        step)."""

        priority = 'LOWEST'

        def __init__(self) -> None:
            self.history: List[Dict[str, float]] = []

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None) -> None:
            self.history.append({
                k: float(v)
                for k, v in (outputs or {}).items() if 'loss' in k
            })

    return LossRecorder()


def summarise(history: List[Dict[str, float]],
              window: int) -> Dict[str, Dict[str, float]]:
    """First-iteration value and mean over the last ``window`` iterations
    of every loss key (keys missing in an iteration, e.g. another dataset's
    loss, are skipped there).

    Args:
        history (list[dict]): per-iteration loss values.
        window (int): iterations averaged at the end.

    Returns:
        dict: key -> ``{'init', 'final', 'n_final'}``; ``init`` is the
        first iteration carrying the key.
    """
    keys = sorted({k for h in history for k in h})
    out = {}
    for k in keys:
        values = [h[k] for h in history if k in h]
        last = [h[k] for h in history[-window:] if k in h]
        out[k] = dict(
            init=values[0],
            final=statistics.fmean(last) if last else float('nan'),
            n_final=len(last))
    return out


def to_markdown(summary: Dict[str, Dict[str, float]], iters: int,
                window: int) -> str:
    lines = [
        f'| loss | iteration 1 (init) | mean of iterations '
        f'{iters - window + 1}-{iters} |', '| --- | --- | --- |'
    ]
    for k, v in summary.items():
        lines.append(f"| `{k}` | {v['init']:.4g} | {v['final']:.4g} |")
    return '\n'.join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    p = tool_parser(__doc__)
    p.add_argument(
        '--work-dir', required=True,
        help='for the demo data, the runs and loss_magnitudes.{md,json}')
    p.add_argument('--config', default='row_bc',
                   choices=['baseline', 'row_a', 'row_bc'],
                   help='demo config (names of projects.lens.lens_demo)')
    p.add_argument(
        '--iters', type=int, default=100, help='training iterations')
    p.add_argument(
        '--window', type=int, default=10,
        help='last iterations averaged for the "final" column')
    p.add_argument('--num-train', type=int, default=60,
                   help='training key slices of each demo set')
    p.add_argument('--seed', type=int, default=0, help='random seed')
    add_cfg_options_argument(p)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmengine.runner import Runner

    import mmlesion  # noqa: F401  (registers components)
    from projects.lens.lens_demo import demo_row_config
    from projects.study_demo.synthetic.deeplesion import \
        generate_study_deeplesion
    if not 0 < args.window <= args.iters:
        print('error: need 0 < --window <= --iters', file=sys.stderr)
        return 2
    data = osp.join(args.work_dir, 'data')
    roots = {}
    for key, seed, kwargs in (
            ('data/demo_deeplesion/', args.seed, {}),
            ('data/demo_lung/', args.seed + 1,
             dict(unannotated_prob=0., lesion_types=(5, )))):
        root = osp.join(data, key.split('/')[1]) + '/'
        if not osp.isfile(osp.join(root, 'DL_info.csv')):
            generate_study_deeplesion(root, seed=seed,
                                      num_train=args.num_train, num_val=0,
                                      num_test=0, **kwargs)
        roots[key] = root
    cfg = demo_row_config(args.config, osp.join(args.work_dir, args.config),
                          roots, epochs=1, seed=args.seed)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=args.iters,
                         val_interval=args.iters + 1)
    cfg.param_scheduler = None
    cfg.default_hooks.checkpoint = None
    cfg.log_processor = dict(by_epoch=False)
    os.makedirs(cfg.work_dir, exist_ok=True)
    runner = Runner.from_cfg(cfg)
    recorder = loss_recorder()
    runner.register_hook(recorder)
    runner.train()
    summary = summarise(recorder.history, args.window)
    md = to_markdown(summary, args.iters, args.window)
    print(md)
    with open(osp.join(args.work_dir, 'loss_magnitudes.md'), 'w') as f:
        f.write(md + '\n')
    with open(osp.join(args.work_dir, 'loss_magnitudes.json'), 'w') as f:
        json.dump(dict(args=vars(args), summary=summary,
                       history=recorder.history), f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
