# Copyright (c) mmlesion contributors. All rights reserved.
"""ElixirNet (Jiang et al., AAAI 2020): its tables, paper numbers and step
times, registered for the shared engines. Models: ``mmlesion/models``
(the TRPN head, the ALB cells and RoI head, the RTM bbox head); configs:
``configs/elixirnet/``."""
from mmlesion.registry import METHODS
from mmlesion.reproduce.table_index import table_specs
from mmlesion.utils.method_spec import MethodSpec
from .paper import GAINS, PAPER_RESULTS, PRINTED, READ_ROWS, VARIANTS
from .tables import BUILDERS


@METHODS.register_module(name='elixirnet')
def elixirnet_method() -> MethodSpec:
    """ElixirNet's :class:`~mmlesion.utils.method_spec.MethodSpec`."""
    return MethodSpec(
        name='elixirnet',
        tables=table_specs(__file__, BUILDERS),
        paper_results=PAPER_RESULTS,
        config_prefixes=('elixirnet', 'faster'),
        variants=VARIANTS,
        read_rows=READ_ROWS,
        printed=PRINTED,
        gains=GAINS,
        # projects/benchmarks/benchmark_elixirnet.py --device cuda: 77.7 ms
        # (ElixirNet-FPN), 50.9 ms (Faster R-CNN R50-FPN) per training
        # image, 3 x 512 x 512, one H100, fp32
        step_times={'elixirnet': 0.0777, 'faster-rcnn': 0.0509})
