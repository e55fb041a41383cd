# Copyright (c) mmlesion contributors. All rights reserved.
from .resnet_with_stem import ResNetWithStem  # noqa: F401
from .slice_group_resnet import SliceGroupResNet  # noqa: F401
