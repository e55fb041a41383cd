# Copyright (c) mmlesion contributors. All rights reserved.
"""The synthetic demo DeepLesion set of the main job (``tools/run_demo.py``)
in the release layout. The study simulator built on it (follow-up studies,
single-type sets, real lesion sizes, CT volumes) is not installed: it is
``projects/study_demo/synthetic/`` of a clone."""
from .settings import (BOX_PADDING, META_FILE, SPLIT_CODES,  # noqa: F401
                       DemoDataConfig)
from .generator import (DeepLesionDemoGenerator,  # noqa: F401
                        generate_demo_deeplesion)
from .anatomy import Lesion, PatientAnatomy, SliceGrid, Tissue  # noqa: F401
from .phantom import (Acquisition, CTPhantom,  # noqa: F401
                      simulate_acquisition)
