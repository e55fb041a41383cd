# Copyright (c) mmlesion contributors. All rights reserved.
from .series_inference import (iter_series_slices, load_lens_and_train_set,
                               predict_series_3d)

__all__ = [
    'iter_series_slices', 'load_lens_and_train_set', 'predict_series_3d'
]
