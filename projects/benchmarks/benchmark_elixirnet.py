# Copyright (c) mmlesion contributors. All rights reserved.
"""Parameters, inference latency and training-step time of ElixirNet-FPN
against mmdet's Faster R-CNN R50-FPN, side by side.

ElixirNet (Jiang et al., AAAI 2020), "Comparison with state-of-the-art": "The
parameter size of ElixirNet is about 60%-70% of the baseline detection
network. Without optimization of parallel structure in Pytorch, inference
speed is slightly slower than baseline." (Table 1: FPN 41 M parameters vs
ElixirNet w FPN 28.4 M.)

The baseline is built from mmdet's own config
(``mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py``) with one class and
no pretrained weights; ElixirNet-FPN from
``configs/elixirnet/elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py`` (TruncatedRPN,
Auto-lesion Block head, RTM), also without pretrained weights. Both get the
same 3-slice 512 x 512 images (values in [-1, 1]) and, for training, the same
ground truth. Per model the tool reports

- the parameter count (and ElixirNet / baseline),
- the inference latency per image: a full ``test_step`` (data preprocessor,
  backbone, RPN, RoI head, post-processing) under ``torch.no_grad()``,
- the time of one training iteration per image: ``train_step`` (forward,
  losses, backward, SGD step),

each after ``--warmup`` untimed runs, as the median of ``--repeats`` timed
runs, the two models interleaved run by run so that both see the same load
of a shared machine; and the ratios ElixirNet / baseline. Random weights
give both RPNs about the same (maximum) number of proposals, which the tool
prints: the RoI heads then work on comparable numbers of regions.

Example::

    python projects/benchmarks/benchmark_elixirnet.py
    python projects/benchmarks/benchmark_elixirnet.py --params-only
    python projects/benchmarks/benchmark_elixirnet.py --device cuda \
        --repeats 50 --json work_dirs/benchmark_elixirnet.json
"""
import argparse
import copy
import json
import statistics
from typing import TYPE_CHECKING, List, Optional, Sequence

from mmengine.config import Config

from mmlesion_cli import tool_parser

# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[2])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
from projects.benchmarks.benchmark_timing import (  # noqa: E402
    add_timing_arguments)

if TYPE_CHECKING:
    import torch

BASELINE_CONFIG = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
ELIXIRNET_CONFIG = 'elixirnet/elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py'
#: Table 1 of the paper (millions of parameters).
PAPER_PARAMS_M = dict(baseline=41.0, elixirnet=28.4)


def _strip_init_cfg(cfg) -> None:
    """Remove every pretrained-weight init (no downloads) in place
    (:func:`mmlesion.apps.reproduce.timing.strip_pretrained`, shared with
    the step timing of ``tools/reproduce.py --dry-run``)."""
    from mmlesion.apps.reproduce.timing import strip_pretrained
    strip_pretrained(cfg)


def _load_config(config: str) -> Config:
    """``mmdet::...`` from mmdet's package, otherwise relative to this
    repository's ``configs/``."""
    from mmengine.hub import get_config as hub_get_config

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.utils import get_config
    if config.startswith('mmdet::'):
        return hub_get_config(config)
    return get_config(config)


def baseline_model_cfg(config: str = BASELINE_CONFIG) -> Config:
    """mmdet's Faster R-CNN R50-FPN model config, one class, no weights."""
    model = copy.deepcopy(_load_config(config).model)
    model.roi_head.bbox_head.num_classes = 1
    _strip_init_cfg(model)
    return model


def elixirnet_model_cfg(config: str = ELIXIRNET_CONFIG) -> Config:
    """ElixirNet model config of this repository, no pretrained weights."""
    model = copy.deepcopy(_load_config(config).model)
    _strip_init_cfg(model)
    return model


def build_model(model_cfg, device: str) -> 'torch.nn.Module':
    """Build and initialise a detector (the per-parameter init log of
    mmengine is silenced), as the step timing of ``tools/reproduce.py
    --dry-run`` does (:func:`mmlesion.apps.reproduce.timing.build_model`).
    """
    from mmlesion.apps.reproduce.timing import build_model as build
    return build(model_cfg, device)


def count_parameters(model: 'torch.nn.Module') -> int:
    return sum(p.numel() for p in model.parameters())


def fake_batch(batch_size: int = 1,
               size: int = 512,
               num_slices: int = 3,
               seed: int = 0) -> dict:
    """``batch_size`` windowed CT-like images with 1-3 lesions each."""
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    gen = torch.Generator().manual_seed(seed)
    inputs: List[torch.Tensor] = []
    samples: List[DetDataSample] = []
    for i in range(batch_size):
        inputs.append(
            torch.rand(num_slices, size, size, generator=gen) * 2 - 1)
        num = 1 + i % 3
        xy = torch.rand(num, 2, generator=gen) * (size * 0.7) + size * 0.1
        wh = torch.rand(num, 2, generator=gen) * (size * 0.1) + 8
        gt = InstanceData()
        gt.bboxes = torch.cat([xy, xy + wh], dim=1)
        gt.labels = torch.zeros(num, dtype=torch.long)
        sample = DetDataSample(
            metainfo=dict(
                img_id=i,
                img_shape=(size, size),
                ori_shape=(size, size),
                pad_shape=(size, size),
                scale_factor=(1.0, 1.0)))
        sample.gt_instances = gt
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def count_proposals(model, data: dict) -> float:
    """Mean number of RPN proposals per image (test configuration)."""
    import torch
    with torch.no_grad():
        batch = model.data_preprocessor(data, False)
        feats = model.extract_feat(batch['inputs'])
        props = model.rpn_head.predict(feats, batch['data_samples'])
    return sum(len(p) for p in props) / len(props)


def run_benchmark(device: str = 'cpu',
                  size: int = 512,
                  batch_size: int = 1,
                  warmup: int = 2,
                  repeats: int = 5,
                  params_only: bool = False,
                  skip_train: bool = False,
                  baseline_config: str = BASELINE_CONFIG,
                  elixirnet_config: str = ELIXIRNET_CONFIG,
                  lr: float = 0.02) -> dict:
    """Measure both models; see the module docstring.

    Returns:
        dict: per model ``params``, ``proposals``, ``infer_s`` (median per
        image), ``train_s`` (median per image), the raw times, and the
        ``ratios`` ElixirNet / baseline.
    """
    import torch
    from mmengine.optim import OptimWrapper

    import mmlesion  # noqa: F401  (registers components)
    from projects.benchmarks.benchmark_timing import (median_ratio,
                                                      time_interleaved)
    torch.manual_seed(0)
    models = dict(
        baseline=build_model(baseline_model_cfg(baseline_config), device),
        elixirnet=build_model(elixirnet_model_cfg(elixirnet_config), device))
    result: dict = dict(
        setup=dict(
            device=device,
            image=f'3 x {size} x {size}',
            batch_size=batch_size,
            warmup=warmup,
            repeats=repeats,
            threads=torch.get_num_threads(),
            baseline_config=baseline_config,
            elixirnet_config=elixirnet_config),
        models={
            name: dict(params=count_parameters(model))
            for name, model in models.items()
        })
    result['ratios'] = dict(params=result['models']['elixirnet']['params'] /
                            result['models']['baseline']['params'])
    if params_only:
        return result

    data = fake_batch(batch_size, size)

    for name, model in models.items():
        model.eval()
        result['models'][name]['proposals'] = count_proposals(model, data)

    def infer_fn(model):

        def run():
            with torch.no_grad():
                model.test_step(data)

        return run

    times = time_interleaved(
        {name: infer_fn(m)
         for name, m in models.items()}, warmup, repeats, device)
    for name, values in times.items():
        per_image = [t / batch_size for t in values]
        result['models'][name]['infer_s'] = statistics.median(per_image)
        result['models'][name]['infer_times_s'] = per_image
    result['ratios']['infer'] = median_ratio(
        result['models']['elixirnet']['infer_times_s'],
        result['models']['baseline']['infer_times_s'])

    if not skip_train:
        wrappers = {}
        for name, model in models.items():
            model.train()
            optimizer = torch.optim.SGD(
                [p for p in model.parameters() if p.requires_grad],
                lr=lr,
                momentum=0.9,
                weight_decay=1e-4)
            wrappers[name] = OptimWrapper(
                optimizer, clip_grad=dict(max_norm=35, norm_type=2))

        def train_fn(name):
            model, wrapper = models[name], wrappers[name]

            def run():
                model.train_step(data, wrapper)

            return run

        times = time_interleaved({name: train_fn(name)
                                  for name in models}, warmup, repeats,
                                 device)
        for name, values in times.items():
            per_image = [t / batch_size for t in values]
            result['models'][name]['train_s'] = statistics.median(per_image)
            result['models'][name]['train_times_s'] = per_image
        result['ratios']['train'] = median_ratio(
            result['models']['elixirnet']['train_times_s'],
            result['models']['baseline']['train_times_s'])
    return result


def format_result(result: dict) -> str:
    """The side-by-side table."""
    models = result['models']
    setup = result['setup']
    lines = [
        f"device {setup['device']} ({setup['threads']} threads), image "
        f"{setup['image']}, batch {setup['batch_size']}, median of "
        f"{setup['repeats']} runs after {setup['warmup']} warm-up runs",
        f"{'':<28}{'Faster R-CNN R50-FPN':>22}{'ElixirNet-FPN':>16}"
        f"{'ratio':>9}",
    ]
    b, e, r = models['baseline'], models['elixirnet'], result['ratios']
    lines.append(f"{'parameters (M)':<28}{b['params'] / 1e6:22.2f}"
                 f"{e['params'] / 1e6:16.2f}{r['params']:9.3f}")
    paper_b, paper_e = PAPER_PARAMS_M['baseline'], PAPER_PARAMS_M['elixirnet']
    lines.append(f"{'  paper, Table 1 (M)':<28}{paper_b:22.1f}"
                 f"{paper_e:16.1f}{paper_e / paper_b:9.3f}")
    if 'proposals' in b:
        lines.append(f"{'RPN proposals / image':<28}{b['proposals']:22.0f}"
                     f"{e['proposals']:16.0f}")
    if 'infer_s' in b:
        lines.append(f"{'inference (ms / image)':<28}"
                     f"{1000 * b['infer_s']:22.1f}"
                     f"{1000 * e['infer_s']:16.1f}{r['infer']:9.3f}")
    if 'train_s' in b:
        lines.append(f"{'training iter (ms / image)':<28}"
                     f"{1000 * b['train_s']:22.1f}"
                     f"{1000 * e['train_s']:16.1f}{r['train']:9.3f}")
    return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument(
        '--size', type=int, default=512, help='edge of the square inputs')
    parser.add_argument(
        '--batch-size', type=int, default=1, help='images per forward pass')
    add_timing_arguments(parser, warmup=2, repeats=5)
    parser.add_argument(
        '--params-only', action='store_true', help='only count parameters')
    parser.add_argument(
        '--skip-train', action='store_true', help='no training iterations')
    parser.add_argument(
        '--baseline-config',
        default=BASELINE_CONFIG,
        help='mmdet::... or a path relative to configs/')
    parser.add_argument(
        '--elixirnet-config',
        default=ELIXIRNET_CONFIG,
        help='mmdet::... or a path relative to configs/')
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args(argv)
    from projects.benchmarks.benchmark_timing import check_timing
    try:
        check_timing(args.warmup, args.repeats)
    except ValueError as err:
        parser.error(str(err))
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.utils.writing.atomic import atomic_write
    result = run_benchmark(
        device=args.device,
        size=args.size,
        batch_size=args.batch_size,
        warmup=args.warmup,
        repeats=args.repeats,
        params_only=args.params_only,
        skip_train=args.skip_train,
        baseline_config=args.baseline_config,
        elixirnet_config=args.elixirnet_config)
    print(format_result(result))
    if args.json:
        with atomic_write(args.json) as f:
            json.dump(result, f, indent=2)
        print(f'written: {args.json}')
    return result


if __name__ == '__main__':
    main()
