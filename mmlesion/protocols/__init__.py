# Copyright (c) mmlesion contributors. All rights reserved.
"""The evaluation protocols of docs/protocols.md run with a trained model
on a dataset, from the config to the result files: LUNA16's candidates of
a test set and its 10-fold cross-validation (§3); a method's own protocol
is in its package (``mmlesion/methods/<name>/``). Each returns a typed
result."""
from .luna16_candidates import TestSetCandidates, predict_candidates
from .luna16_cv import FoldRecord, PooledFolds, pool_folds, run_fold

__all__ = [
    'TestSetCandidates', 'predict_candidates', 'FoldRecord', 'PooledFolds',
    'pool_folds', 'run_fold'
]
