# Copyright (c) mmlesion contributors. All rights reserved.
"""CPU seconds of a Faster R-CNN R18/R50-FPN training step per image, at
several image sides, and the fixed and per-pixel terms fitted to them.

The 3-slice 2.5D config (``configs/elixirnet/faster-rcnn_r50_fpn_4xb2-1x_
deeplesion-3slice.py``) with random weights, a batch of random images with
two boxes each, forward + backward + SGD step; the process's CPU time (not
wall time, so a busy machine does not move it) over ``--steps`` steps
after one untimed step, at each of ``--sides``. A step has a per-image
cost that does not shrink with the image (the RoI head's sampled RoIs:
RoIAlign and its FCs), so the seconds per image are fitted as ``fixed +
per_pixel * pixels`` (least squares over the sides).
``mmlesion.apps.reproduce.estimate.CPU_SECONDS_PER_TRAINING_IMAGE`` ships the
two terms, which ``tools/plan_dataset.py --device cpu --budget-minutes``
plans with.

``--compare-roi-extractors`` times instead, at each side, the step with
mmdet's ``SingleRoIExtractor`` (mmcv's RoIAlign, the baseline) and with
``RowsRoIExtractor`` (the same RoIAlign on channels-last rows), alternately
on the same batches and weights, and checks that their losses agree
(relative 1e-4); the last line prints the ratio.

Example::

    OMP_NUM_THREADS=1 python projects/benchmarks/benchmark_cpu_train_step.py \\
        --depth 18 --sides 64 128 256
    OMP_NUM_THREADS=1 python projects/benchmarks/benchmark_cpu_train_step.py \\
        --sides 96 --head-channels 64 --rcnn-rois 128 \\
        --compare-roi-extractors
"""
import os
import sys
import time
from typing import List

from mmlesion_cli import tool_parser


def _step(model, opt, side: int, batch: int, seed: int):
    """One training step on ``batch`` random images (``seed``: images and
    samplers): its CPU seconds and its losses."""
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    torch.manual_seed(seed)
    images = torch.rand(batch, 3, side, side) * 2 - 1
    samples = []
    for _ in range(batch):
        sample = DetDataSample(metainfo=dict(
            img_shape=(side, side), pad_shape=(side, side),
            batch_input_shape=(side, side), scale_factor=(1., 1.)))
        gt = InstanceData()
        gt.bboxes = torch.tensor([[.15, .15, .23, .22],
                                  [.4, .47, .5, .55]]) * side
        gt.labels = torch.zeros(2, dtype=torch.long)
        sample.gt_instances = gt
        samples.append(sample)
    start = time.process_time()
    loss, logged = model.parse_losses(model.loss(images, samples))
    opt.zero_grad()
    loss.backward()
    opt.step()
    return time.process_time() - start, logged


def _seconds_per_image(model, opt, side: int, batch: int,
                       steps: int) -> List[float]:
    """CPU seconds per image of each of ``steps`` timed training steps (one
    untimed step first) on ``batch`` random ``side`` x ``side`` images."""
    return [_step(model, opt, side, batch, step)[0] / batch
            for step in range(steps + 1)][1:]


def _compare_roi_extractors(model, extractor_cfg, args) -> None:
    """Steps of ``model`` and of a copy whose RoI extractor (config
    ``extractor_cfg``) is ``RowsRoIExtractor``, alternately; their ratio
    and whether the losses agree."""
    import copy

    import torch
    from mmdet.registry import MODELS
    rows = copy.deepcopy(model)
    rows.roi_head.bbox_roi_extractor = MODELS.build(
        dict(extractor_cfg, type='RowsRoIExtractor'))
    pair = {name: (m, torch.optim.SGD(m.parameters(), lr=0.))
            for name, m in (('SingleRoIExtractor', model),
                            ('RowsRoIExtractor', rows))}
    same, ratios = True, []
    for side in args.sides:
        spent = {name: 0. for name in pair}
        for step in range(args.steps + 1):
            losses = {}
            for name, (m, opt) in pair.items():
                seconds, losses[name] = _step(m, opt, side, args.batch, step)
                spent[name] += seconds if step else 0.
            a, b = losses.values()
            same &= all(abs(a[k] - b[k]) <= 1e-4 * abs(a[k]) + 1e-6
                        for k in a)
        ratios.append(spent['SingleRoIExtractor'] / spent['RowsRoIExtractor'])
        print(f'{side} x {side} px: CPU s per step '
              + ', '.join(f'{n} {t / args.steps:.3f}'
                          for n, t in spent.items())
              + f' ({ratios[-1]:.2f}x)')
    print(f"{min(ratios):.2f}x mmdet's SingleRoIExtractor (least over "
          f'{len(ratios)} sides), same losses: {same}')


def main() -> None:
    parser = tool_parser(__doc__)
    parser.add_argument('--depth', type=int, choices=(18, 50), default=18,
                        help='ResNet depth of the backbone')
    parser.add_argument('--sides', type=int, nargs='+', default=[64, 256],
                        help='image heights and widths in pixels (two or '
                        'more for the fit)')
    parser.add_argument('--batch', type=int, default=2,
                        help='images per training step')
    parser.add_argument('--steps', type=int, default=4,
                        help='training steps timed at each side')
    parser.add_argument('--head-channels', type=int, default=256,
                        help="FPN, RPN and RoI feature channels (the RoI "
                        "head's FCs: 4x); 256 as mmdet's")
    parser.add_argument('--rcnn-rois', type=int, default=512,
                        help='RoIs the RoI head samples an image')
    parser.add_argument('--compare-roi-extractors', action='store_true',
                        help="a step with mmdet's SingleRoIExtractor against "
                        'one with RowsRoIExtractor (the ratio)')
    args = parser.parse_args()
    import numpy as np
    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmlesion  # noqa: F401 (registers the modules)
    from mmlesion.apps.reproduce.timing import device_name
    from mmlesion.utils.configs.lookup import repo_root
    cfg = Config.fromfile(str(
        repo_root() / 'configs/elixirnet/'
        'faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py'))
    init_default_scope('mmdet')
    cfg.model.backbone.init_cfg = None
    if args.depth == 18:
        cfg.model.backbone.depth = 18
        cfg.model.neck.in_channels = [64, 128, 256, 512]
    width = args.head_channels
    cfg.merge_from_dict({
        'model.neck.out_channels': width, 'model.rpn_head.in_channels': width,
        'model.rpn_head.feat_channels': width,
        'model.roi_head.bbox_roi_extractor.out_channels': width,
        'model.roi_head.bbox_head.in_channels': width,
        'model.roi_head.bbox_head.fc_out_channels': 4 * width,
        'model.train_cfg.rcnn.sampler.num': args.rcnn_rois})
    model = MODELS.build(cfg.model).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=.9)
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')} "
          f"python {' '.join(sys.argv)}")
    print(f'machine: {device_name("cpu")}')
    if args.compare_roi_extractors:
        return _compare_roi_extractors(
            model, cfg.model.roi_head.bbox_roi_extractor, args)
    means = []
    for side in args.sides:
        times = _seconds_per_image(model, opt, side, args.batch, args.steps)
        means.append(sum(times) / len(times))
        print(f'Faster R-CNN R{args.depth}-FPN ({width} channels, '
              f'{args.rcnn_rois} RoIs), {side} x {side} px, batch '
              f'{args.batch}: CPU s per image '
              f'{[round(t, 3) for t in times]}, mean {means[-1]:.3f}')
    if len(set(args.sides)) > 1:
        pixels = np.square(np.array(args.sides, float))
        per_pixel, fixed = np.polyfit(pixels, means, 1)
        fitted = fixed + per_pixel * pixels
        print(f'fit: CPU s per image = {fixed:.3f} + {per_pixel:.3e} x '
              f'pixels (residuals '
              f'{[round(float(r), 3) for r in np.array(means) - fitted]})')


if __name__ == '__main__':
    main()
