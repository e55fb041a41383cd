# Copyright (c) mmlesion contributors. All rights reserved.
from .volume_data_preprocessor import VolumeDataPreprocessor  # noqa: F401
