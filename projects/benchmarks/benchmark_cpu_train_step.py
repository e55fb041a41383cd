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

Example::

    OMP_NUM_THREADS=1 python projects/benchmarks/benchmark_cpu_train_step.py \\
        --depth 18 --sides 64 128 256
"""
import os
import sys
import time
from typing import List

from mmlesion_cli import tool_parser


def _seconds_per_image(model, opt, side: int, batch: int,
                       steps: int) -> List[float]:
    """CPU seconds per image of each of ``steps`` timed training steps (one
    untimed step first) on ``batch`` random ``side`` x ``side`` images."""
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    times = []
    for step in range(steps + 1):
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
        losses = model.loss(images, samples)
        loss = sum(v.sum() if isinstance(v, torch.Tensor) else
                   sum(x.sum() for x in v) for v in losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step:
            times.append((time.process_time() - start) / batch)
    return times


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
