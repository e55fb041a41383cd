# Copyright (c) mmlesion contributors. All rights reserved.
from .mulan_densenet import MULANDenseNet  # noqa: F401
from .resnet18_fpr3d import ResNet18FPR3D  # noqa: F401
from .resnet_with_stem import ResNetWithStem  # noqa: F401
from .slice_group_resnet import SliceGroupResNet  # noqa: F401
from .vgg import LesionVGG  # noqa: F401
