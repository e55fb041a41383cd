# Copyright (c) mmlesion contributors. All rights reserved.
"""Synthetic CT data in the DeepLesion release layout (demo and tests)."""
from .dataset_writer import dataset_digest  # noqa: F401
from .settings import (BOX_PADDING, META_FILE, SPLIT_CODES,  # noqa: F401
                       DemoDataConfig)
from .generator import (DeepLesionDemoGenerator,  # noqa: F401
                        generate_demo_deeplesion)
from .anatomy import Lesion, PatientAnatomy, SliceGrid, Tissue  # noqa: F401
from .phantom import (Acquisition, CTPhantom,  # noqa: F401
                      simulate_acquisition)
from .volumes import (DemoVolumeConfig, DemoVolumeGenerator,  # noqa: F401
                      generate_demo_volumes)
