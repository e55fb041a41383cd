# Copyright (c) mmlesion contributors. All rights reserved.
from .lesion_visualization_hook import LesionVisualizationHook  # noqa: F401
from .checkpoint_check_hook import (CheckpointCheckHook,  # noqa: F401
                                    set_checkpoint_check_hook)
from .atomic_checkpoint_hook import AtomicCheckpointHook  # noqa: F401
from .random_state_hook import RandomStateHook  # noqa: F401
from .data_convention_hook import DataConventionHook  # noqa: F401
