# Copyright (c) mmlesion contributors. All rights reserved.
"""Differentiable search of the Auto-lesion Block (ElixirNet)."""
from .genotype import (apply_genotypes, check_genotypes, derive_genotypes,
                       dump_genotypes, find_search_heads, format_genotypes,
                       load_genotypes)
from .search_loop import ALBSearchLoop
from .search_optim_constructor import (ALBSearchOptimWrapperConstructor,
                                       split_arch_params)
from .search_split_dataset import SearchSplitDataset, split_indices

__all__ = [
    'ALBSearchLoop', 'ALBSearchOptimWrapperConstructor', 'SearchSplitDataset',
    'apply_genotypes', 'check_genotypes', 'derive_genotypes', 'dump_genotypes',
    'find_search_heads', 'format_genotypes', 'load_genotypes',
    'split_arch_params', 'split_indices'
]
