# Copyright (c) mmlesion contributors. All rights reserved.
from .improved_retinanet import ImprovedRetinaNet  # noqa: F401
from .lens import LENS  # noqa: F401
from .lens_fpr import LENSFPR  # noqa: F401
from .lens_one_stage import LENSOneStage  # noqa: F401
from .lens_separate_models import LENSSeparateModels  # noqa: F401
from .uncropped import UncroppedFasterRCNN  # noqa: F401
