# Copyright (c) mmlesion contributors. All rights reserved.
from .lesion_seg_head import LesionSegHead  # noqa: F401
from .afp_head import AFPHead  # noqa: F401
from .centernet_proposal_head import CenterNetProposalHead  # noqa: F401
