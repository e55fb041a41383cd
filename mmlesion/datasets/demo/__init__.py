# Copyright (c) mmlesion contributors. All rights reserved.
"""Synthetic CT data in the DeepLesion release layout (demo and tests)."""
from .dataset_writer import dataset_digest
from .settings import BOX_PADDING, META_FILE, SPLIT_CODES, DemoDataConfig
from .generator import DeepLesionDemoGenerator, generate_demo_deeplesion
from .anatomy import Lesion, PatientAnatomy, SliceGrid, Tissue
from .phantom import CTPhantom, simulate_acquisition
from .volumes import (DemoVolumeConfig, DemoVolumeGenerator,
                      generate_demo_volumes)

__all__ = [
    'BOX_PADDING', 'META_FILE', 'SPLIT_CODES',
    'DeepLesionDemoGenerator', 'DemoDataConfig', 'dataset_digest',
    'generate_demo_deeplesion', 'CTPhantom', 'Lesion', 'PatientAnatomy',
    'SliceGrid', 'Tissue', 'simulate_acquisition', 'DemoVolumeConfig',
    'DemoVolumeGenerator', 'generate_demo_volumes'
]
