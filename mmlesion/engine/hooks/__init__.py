# Copyright (c) mmlesion contributors. All rights reserved.
from .lesion_visualization_hook import LesionVisualizationHook  # noqa: F401
