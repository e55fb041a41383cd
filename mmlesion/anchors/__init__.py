# Copyright (c) mmlesion contributors. All rights reserved.
from .de_anchor_optimizer import AnchorConfig, DEAnchorOptimizer  # noqa: F401
from .model_pyramid import (check_anchor_pyramid,  # noqa: F401
                            head_feature_strides)
