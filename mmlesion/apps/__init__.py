# Copyright (c) mmlesion contributors. All rights reserved.
"""The applications built on the core library: each imports the core
(models, datasets, evaluation, the one-scan whole-scan API, ...), never the
other way round, and no method (docs/layers.md).

================ =========================================================
``whole_scan``   a day's scans, shards (local or Slurm) and DICOM servers
                 (DICOMweb, DIMSE) through one model
``own_data``     the dataset converters (scans with label masks or a box
                 CSV, the public releases as presets) and the dataset
                 planner
``reproduce``    the paper tables: plans, estimates, runs, Slurm
``demo``         the synthetic demo data and the release replicas
================ =========================================================

Nothing here is imported by ``import mmlesion``.
"""
