# Copyright (c) mmlesion contributors. All rights reserved.
"""Search of the Auto-lesion Block (ElixirNet): the differentiable search
and, for Table 6, random search with weight sharing."""
from .genotype import (apply_genotypes, check_genotypes, derive_genotypes,
                       dump_genotypes, find_search_heads, format_genotypes,
                       load_genotypes, load_op_names, search_space_tag)
from .random_search import genotype_rng, sample_genotypes
from .search_loop import ALBSearchLoop
from .search_optim_constructor import (ALBSearchOptimWrapperConstructor,
                                       split_arch_params)
from .search_split_dataset import SearchSplitDataset, split_indices

__all__ = [
    'ALBSearchLoop', 'ALBSearchOptimWrapperConstructor', 'SearchSplitDataset',
    'apply_genotypes', 'check_genotypes', 'derive_genotypes', 'dump_genotypes',
    'find_search_heads', 'format_genotypes', 'genotype_rng',
    'load_genotypes', 'load_op_names', 'sample_genotypes',
    'search_space_tag', 'split_arch_params', 'split_indices'
]
