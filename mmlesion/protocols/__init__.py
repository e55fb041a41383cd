# Copyright (c) mmlesion contributors. All rights reserved.
"""The evaluation protocols of docs/protocols.md run with a trained model
on a dataset, from the config to the result files: the LENS 3D evaluation
(§2), LUNA16's candidates of a test set and its 10-fold cross-validation
(§3). Each returns a typed result."""
from .lens_eval_3d import (Lens3DEvalSettings, Lens3DEvaluation,
                           evaluate_lens_3d)
from .luna16_candidates import TestSetCandidates, predict_candidates
from .luna16_cv import FoldRecord, PooledFolds, pool_folds, run_fold

__all__ = [
    'Lens3DEvalSettings', 'Lens3DEvaluation', 'evaluate_lens_3d',
    'TestSetCandidates', 'predict_candidates', 'FoldRecord', 'PooledFolds',
    'pool_folds', 'run_fold'
]
