# Copyright (c) mmlesion contributors. All rights reserved.
from .relation_graph import (RelationGraphStyle,  # noqa: F401
                             draw_relation_graph, select_edges, slice_to_gray)
from .lesion_visualizer import draw_lesion_detections  # noqa: F401
from .luna16_froc import plot_luna16_froc  # noqa: F401
from .froc_curves import plot_froc_curves  # noqa: F401
from .study_froc import plot_study_froc  # noqa: F401
from .lesion_local_visualizer import LesionLocalVisualizer  # noqa: F401
