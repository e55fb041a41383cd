# Copyright (c) mmlesion contributors. All rights reserved.
"""ElixirNet (Jiang et al., AAAI 2020): its tables, paper numbers and step
times for the paper harness (``tables.py``, ``paper.py``). Its detectors
read no ``train_cfg`` / ``test_cfg`` keys of their own and it adds no
whole-scan step, so only its paper tables' module is named here. Its
components live here too and register when it is imported (its configs'
``custom_imports``): ``models/`` (the TRPN head, the ALB cells and RoI
head, the RTM bbox head) and ``nas/`` (the ALB search); configs:
``configs/elixirnet/``."""
from . import models, nas  # noqa: F401  (registers them)

#: its part of the paper harness, imported by the harness only
PAPER_TABLES_MODULE = 'mmlesion.methods.elixirnet.tables'

