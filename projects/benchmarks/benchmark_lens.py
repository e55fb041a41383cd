# Copyright (c) mmlesion contributors. All rights reserved.
"""Inference time per slice of LENS against mmdet's Faster R-CNN R50-FPN, in
one run on the same machine.

LENS (Yan et al., TMI 2020, Sec. VI-B): "It took LENS 54ms to process a
slice during inference on a Quadro RTX 6000 GPU" (Table IV: 1.8x the time of
a single-dataset model). The tool times a full ``test_step`` (preprocessing,
backbone, proposals, detection head, fusion) per 512 x 512 slice of

- ``faster_rcnn``: mmdet's Faster R-CNN R50-FPN (3 slices, one class),
- ``lens_1expert``: LENS, Table I row (b): four AFPs, the DeepLesion expert
  only (9 slices, DenseNet-121 2.5D),
- ``lens_4experts``: LENS, row (c): the four experts fused,

interleaved run by run (so that all see the same load of a shared machine),
after ``--warmup`` untimed runs, as the median of ``--repeats`` runs; then
the ratios to Faster R-CNN. Weights are random (no downloads); the models
work on their full proposal budgets. Helpers are shared with
``benchmark_elixirnet.py``.

Example::

    python projects/benchmarks/benchmark_lens.py --repeats 5
    python projects/benchmarks/benchmark_lens.py --device cuda --repeats 50
"""
import copy
import json
import os.path as osp
import statistics
import sys
from typing import Optional, Sequence

from mmlesion_cli import tool_parser

# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[2])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
from projects.benchmarks.benchmark_timing import (  # noqa: E402
    add_timing_arguments)

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_elixirnet import (_load_config, _strip_init_cfg,  # noqa: E402
                                 baseline_model_cfg, build_model, fake_batch)

LENS_CONFIG = ('lens/lens-afp-multi-fusion_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice.py')
PAPER_MS_PER_SLICE = 54.0


def lens_model_cfg(experts: Optional[Sequence[int]]):
    """The row (c) model with the given experts fused, no weights."""
    model = copy.deepcopy(_load_config(LENS_CONFIG).model)
    _strip_init_cfg(model)
    model.test_cfg.expert_fusion.experts = experts
    return model


def run(device: str = 'cpu', warmup: int = 1, repeats: int = 5,
        size: int = 512) -> dict:
    import torch

    from projects.benchmarks.benchmark_timing import (median_ratio,
                                                      time_interleaved)
    torch.manual_seed(0)
    models = dict(
        faster_rcnn=(build_model(baseline_model_cfg(), device), 3),
        lens_1expert=(build_model(lens_model_cfg([0]), device), 9),
        lens_4experts=(build_model(lens_model_cfg(None), device), 9))
    fns = {}
    for name, (model, slices) in models.items():
        model.eval()
        data = fake_batch(1, size, slices)

        def step(model=model, data=data):
            with torch.no_grad():
                model.test_step(data)

        fns[name] = step
    times = time_interleaved(fns, warmup, repeats, device)
    ms = {k: statistics.median(v) * 1000 for k, v in times.items()}
    return dict(
        device=device if device == 'cpu' else torch.cuda.get_device_name(),
        threads=torch.get_num_threads(),
        repeats=repeats,
        ms_per_slice={k: round(v, 1) for k, v in ms.items()},
        ratio_to_faster_rcnn={
            k: round(median_ratio(v, times['faster_rcnn']), 3)
            for k, v in times.items()
        },
        lens_4experts_over_1expert=round(
            median_ratio(times['lens_4experts'], times['lens_1expert']), 3),
        paper_ms_per_slice_gpu=PAPER_MS_PER_SLICE)


def main(argv=None) -> dict:
    p = tool_parser(__doc__)
    p.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    add_timing_arguments(p, warmup=1, repeats=5)
    p.add_argument(
        '--size', type=int, default=512, help='edge of the square slices')
    p.add_argument('--json', default=None, help='also write the result')
    args = p.parse_args(argv)
    from projects.benchmarks.benchmark_timing import check_timing
    try:
        check_timing(args.warmup, args.repeats)
    except ValueError as err:
        p.error(str(err))
    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.utils.writing.atomic import atomic_write
    result = run(args.device, args.warmup, args.repeats, args.size)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        with atomic_write(args.json) as f:
            f.write(text + '\n')
    return result


if __name__ == '__main__':
    main()
