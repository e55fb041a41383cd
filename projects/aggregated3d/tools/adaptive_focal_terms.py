# Copyright (c) mmlesion contributors. All rights reserved.
"""The two terms of Eq. 3 (adaptive focal loss) over the first iterations.

3D Aggregated Faster R-CNN, Sec. III-B: the negative term
``T log(N_TN) / N_TN * sum_neg L_F`` should hold the focus at the start
("we place the focus on the massive negative samples") and hand it to the
positive term ``1 / N_pos * sum_pos L_CE`` as training proceeds and T grows.
Whether it does depends on the objectness prior the RPN head starts from;
this tool trains the config's RPN (its loss, anchors, assigner, optimiser,
iteration-based warm-up and T schedule) with tiny widths on synthetic crops
(bright spheres of 4 to 24 voxels on noise, ``--crop``^3, the config's batch
size) once per ``--priors`` value and prints, every ``--every`` iterations,
T, the learning rate, N_pos, N_TN and both terms.

T grows over the *full* run as in training: the message hub's ``max_iters``
is ``--full-iters`` (default: :func:`full_run_iters`, the config's epochs x
its iterations per epoch, 799 LUNA16 training scans x ``crops_per_scan`` /
batch size: 50 x 2,397 for the LUNA16 configs), so the first few hundred
iterations see T near its start, as a real run does. Epoch-based LR steps
(epoch 25 and later) are outside the window and not applied.

Example (the numbers in configs/aggregated3d/README.md)::

    nice -n 10 python projects/aggregated3d/tools/adaptive_focal_terms.py \
        --iters 300 --every 25 --crop 48 --seed 0
"""
import json
import math
import os
import sys
from typing import Dict, List, Optional

import numpy as np

from mmlesion_cli import tool_parser

DEFAULT_CONFIG = ('configs/aggregated3d/'
                  'rpn3d-focal_denseunet3d_anchor1_4xb2-50e_luna16.py')


def synthetic_batch(gen: np.random.Generator, crop: int,
                    batch_size: int) -> dict:
    """Crops in [-1, 1] with 1 to 3 bright spheres of 4 to 24 voxels.

    Args:
        gen (np.random.Generator): the random source.
        crop (int): crop edge (voxels).
        batch_size (int): crops in the batch.

    Returns:
        dict: ``inputs`` (list of (1, crop, crop, crop) tensors) and
        ``data_samples`` (``DetDataSample`` with ``gt_instances``), the input
        of the model's data preprocessor.
    """
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    grid = np.indices((crop, ) * 3).astype(np.float32)
    inputs, samples = [], []
    for _ in range(batch_size):
        vol = gen.normal(-0.6, 0.1, (crop, ) * 3).astype(np.float32)
        boxes = []
        for _ in range(int(gen.integers(1, 4))):
            d = float(gen.uniform(4, 24))
            c = gen.uniform(d / 2, crop - d / 2, 3)  # z, y, x
            inside = ((grid - c[:, None, None, None])**2).sum(0) <= (d / 2)**2
            vol[inside] = gen.normal(0.3, 0.1, int(inside.sum()))
            boxes.append([c[2] - d / 2, c[1] - d / 2, c[0] - d / 2,
                          c[2] + d / 2, c[1] + d / 2, c[0] + d / 2])
        sample = DetDataSample(metainfo=dict(img_shape=(crop, ) * 3))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor(boxes, dtype=torch.float32),
            labels=torch.zeros(len(boxes), dtype=torch.long))
        inputs.append(torch.from_numpy(np.clip(vol, -1, 1))[None])
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def tiny_rpn_cfg(cfg, channels: int, prior: float):
    """The config's model as an RPN of ``channels`` widths and ``prior``."""
    model = cfg.model.copy()
    model.fprn_head = None
    model.backbone.update(base_channels=channels,
                          growth_rate=max(channels // 2, 1),
                          out_channels=channels)
    model.rpn_head.update(in_channels=channels, prior_prob=prior)
    return model


#: LUNA16 scans in the training folds of one fold (888 x 9 / 10).
LUNA16_TRAIN_SCANS = 799


def full_run_iters(cfg, num_train_scans: int = LUNA16_TRAIN_SCANS) -> int:
    """Iterations of the config's whole training run: epochs x
    ``ceil(num_train_scans x crops_per_scan / batch_size)`` (the training
    dataset's ``crops_per_scan``, through dataset wrappers; 1 if unset).

    Args:
        cfg (Config): a training config.
        num_train_scans (int): scans in the training split.

    Returns:
        int: the number of iterations.
    """
    dataset = cfg.train_dataloader.dataset
    while 'dataset' in dataset:
        dataset = dataset.dataset
    crops = int(dataset.get('crops_per_scan', 1))
    batch = int(cfg.train_dataloader.get('batch_size', 1))
    return int(cfg.train_cfg.max_epochs) * math.ceil(
        num_train_scans * crops / batch)


def run(cfg, prior: float, iters: int, every: int, crop: int,
        full_iters: int, channels: int, seed: int) -> List[Dict[str, float]]:
    """Train the tiny RPN for ``iters`` iterations; the terms every
    ``every`` iterations (and at iteration 0).

    Returns:
        list[dict]: ``iter``, ``t``, ``lr``, ``n_pos``, ``n_tn``, ``n_neg``,
        ``neg``, ``pos``.
    """
    import torch
    from mmdet.registry import MODELS
    from mmengine.logging import MessageHub
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS
    torch.manual_seed(seed)
    model = MODELS.build(tiny_rpn_cfg(cfg, channels, prior))
    model.init_weights()
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper.copy())
    schedulers = [
        PARAM_SCHEDULERS.build(dict(s, optimizer=optim))
        for s in cfg.param_scheduler if not s.get('by_epoch', True)
    ]
    hub = MessageHub.get_instance(f'adaptive_focal_terms_{prior}_{seed}')
    hub.update_info('max_iters', full_iters)
    loss = model.rpn_head.loss_cls
    if not hasattr(loss, 'terms'):
        raise SystemExit(f'{cfg.filename}: the RPN loss {type(loss).__name__}'
                         ' is not AdaptiveFocalLoss (no Eq. 3 terms)')
    seen = {}

    def record(module, args, kwargs, output):
        with torch.no_grad():
            seen.update({k: float(v) for k, v in module.terms(
                *args, weight=kwargs.get('weight')).items()})

    handle = loss.register_forward_hook(record, with_kwargs=True)
    gen = np.random.default_rng(seed)
    batch = int(cfg.train_dataloader.get('batch_size', 2))
    rows = []
    try:
        for it in range(iters + 1):
            hub.update_info('iter', it)
            data = synthetic_batch(gen, crop, batch)
            model.train_step(data, optim)
            if it % every == 0 or it == iters:
                rows.append(dict(iter=it, lr=optim.get_lr()['lr'][0],
                                 **seen))
                print(format_row(rows[-1]), flush=True)
            for sched in schedulers:
                sched.step()
    finally:
        handle.remove()
    return rows


HEADER = (f'{"iter":>5} {"T":>6} {"lr":>8} {"N_pos":>6} {"N_TN":>7} '
          f'{"N_neg":>7} {"neg term":>10} {"pos term":>10} {"neg share":>9}')


def format_row(r: dict) -> str:
    """One line of the table: the terms of Eq. 3 at one iteration."""
    total = r['neg'] + r['pos']
    return (f'{r["iter"]:>5d} {r["t"]:>6.3f} {r["lr"]:>8.5f} '
            f'{r["n_pos"]:>6.0f} {r["n_tn"]:>7.0f} {r["n_neg"]:>7.0f} '
            f'{r["neg"]:>10.3e} {r["pos"]:>10.3e} '
            f'{(r["neg"] / total if total else 0.):>9.3f}')


def main(argv: Optional[List[str]] = None) -> Dict[str, list]:
    parser = tool_parser(__doc__)
    parser.add_argument(
        'config', nargs='?', default=DEFAULT_CONFIG,
        help='the 3D-AG RPN config whose loss, optimiser and schedule are '
        'used')
    parser.add_argument(
        '--priors', type=float, nargs='+', default=[0.01, 0.5],
        help='objectness priors (initial foreground probability) to compare')
    parser.add_argument(
        '--iters', type=int, default=300,
        help='training iterations of each tiny run')
    parser.add_argument(
        '--every', type=int, default=50,
        help='print a row every N iterations')
    parser.add_argument(
        '--crop', type=int, default=48,
        help='edge of the synthetic training crops (voxels, >= 16)')
    parser.add_argument('--channels', type=int, default=8,
                        help='pyramid / PreBlock width of the tiny model')
    parser.add_argument('--full-iters', type=int,
                        help='iterations of the full run (T schedule); '
                        'default: the config epochs x its iterations per '
                        'epoch (799 training scans x crops_per_scan / '
                        'batch size)')
    parser.add_argument(
        '--seed', type=int, default=0,
        help='random seed (data and weights)')
    parser.add_argument('--json', help='also write the rows here')
    args = parser.parse_args(argv)
    import torch
    if args.iters < 1 or args.every < 1 or args.crop < 16:
        parser.error('--iters and --every must be >= 1, --crop >= 16')
    if any(not 0 < p < 1 for p in args.priors):
        parser.error('--priors must be in (0, 1)')
    from mmengine.config import Config
    from mmengine.logging import MMLogger

    import mmlesion  # noqa: F401  (registers the model)

    # the current logger: init_weights' per-parameter report stays quiet
    MMLogger.get_instance('adaptive_focal_terms', log_level='WARNING')
    if not os.path.isfile(args.config):
        parser.error(f'config not found: {args.config}')
    cfg = Config.fromfile(args.config)
    full_iters = args.full_iters or full_run_iters(cfg)
    print(f'{args.config}: loss {dict(cfg.model.rpn_head.loss_cls)}, '
          f'optimiser {dict(cfg.optim_wrapper.optimizer)}, T over '
          f'{full_iters} iterations, tiny widths {args.channels}, '
          f'{args.crop}^3 crops, seed {args.seed}, torch threads '
          f'{torch.get_num_threads()}')
    out = {}
    for prior in args.priors:
        print(f'prior {prior} (objectness bias '
              f'{math.log(prior / (1 - prior)):+.2f})\n{HEADER}', flush=True)
        out[str(prior)] = run(cfg, prior, args.iters, args.every, args.crop,
                              full_iters, args.channels, args.seed)
    if args.json:
        tmp = args.json + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(out, f, indent=1)
        os.replace(tmp, args.json)
    return out


if __name__ == '__main__':
    sys.exit(main() and 0)
