# Copyright (c) mmlesion contributors. All rights reserved.
from .alb_bbox_head import ALBBBoxHead, DEFAULT_ALB_GENOTYPES  # noqa: F401
from .rtm_bbox_head import RTMBBoxHead  # noqa: F401
from .lens_bbox_head import LENSBBoxHead  # noqa: F401
