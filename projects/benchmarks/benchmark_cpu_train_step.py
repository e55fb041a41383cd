# Copyright (c) mmlesion contributors. All rights reserved.
"""CPU seconds of a Faster R-CNN R18/R50-FPN training step per image.

The 3-slice 2.5D config (``configs/elixirnet/faster-rcnn_r50_fpn_4xb2-1x_
deeplesion-3slice.py``) with random weights, a batch of random images with
two boxes each, forward + backward + SGD step; the process's CPU time (not
wall time, so a busy machine does not move it) over ``--steps`` steps.
``mmlesion.reproduce.estimate.CPU_SECONDS_PER_TRAINING_IMAGE`` ships one
figure of it, which ``tools/plan_dataset.py --device cpu
--budget-minutes`` plans with.

Example::

    OMP_NUM_THREADS=1 python projects/benchmarks/benchmark_cpu_train_step.py \\
        --depth 18 --side 256
"""
import time

from mmlesion_cli import tool_parser


def main() -> None:
    parser = tool_parser(__doc__)
    parser.add_argument('--depth', type=int, choices=(18, 50), default=18,
                        help='ResNet depth of the backbone')
    parser.add_argument('--side', type=int, default=256,
                        help='image height and width in pixels')
    parser.add_argument('--batch', type=int, default=2,
                        help='images per training step')
    parser.add_argument('--steps', type=int, default=4,
                        help='training steps timed')
    args = parser.parse_args()
    import torch
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.structures import InstanceData

    import mmlesion  # noqa: F401 (registers the modules)
    from mmlesion.utils.configs.lookup import repo_root
    cfg = Config.fromfile(str(
        repo_root() / 'configs/elixirnet/'
        'faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py'))
    init_default_scope('mmdet')
    cfg.model.backbone.init_cfg = None
    if args.depth == 18:
        cfg.model.backbone.depth = 18
        cfg.model.neck.in_channels = [64, 128, 256, 512]
    model = MODELS.build(cfg.model).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=.9)
    side, times = args.side, []
    for _ in range(args.steps):
        images = torch.rand(args.batch, 3, side, side) * 2 - 1
        samples = []
        for _ in range(args.batch):
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
        times.append((time.process_time() - start) / args.batch)
    print(f'Faster R-CNN R{args.depth}-FPN, {side} x {side} px, batch '
          f'{args.batch}, {torch.get_num_threads()} thread(s): CPU s per '
          f'image {[round(t, 3) for t in times]}, mean '
          f'{sum(times) / len(times):.3f}')


if __name__ == '__main__':
    main()
