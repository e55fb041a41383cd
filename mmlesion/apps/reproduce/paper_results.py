# Copyright (c) mmlesion contributors. All rights reserved.
"""The papers' published numbers that a reproduced table is set beside
(docs/reproduce.md), one entry per model: its config's stem, a name of
:data:`MERGED_MODELS` or :data:`QUOTED_MODELS` (another paper's row, never
run), or ``<stem>@<criterion>`` (the same model under another criterion of
its paper), in the keys of the table's metric map. The same numbers are
the "paper" column of ``configs/<method>/README.md``; the metafiles carry
no results (OpenMMLab's ``Results`` are for models with weights).
"""
from typing import Dict, Mapping, Optional, Sequence

from .paper_tables import paper_view

#: the FP rates per image of a DeepLesion 2D FROC row (0.5 .. 16)
FROC_ROW_RATES = (0.5, 1, 2, 3, 4, 8, 16)


def froc_row(sens: Sequence[float], map_: Optional[float] = None,
             rates: Sequence[float] = FROC_ROW_RATES) -> Dict[str, float]:
    """A DeepLesion 2D row: sensitivity (%) at ``rates`` FPs per image,
    and its COCO mAP when printed."""
    out = {f'sens@{r:g}': v for r, v in zip(rates, sens)}
    return out if map_ is None else dict(out, bbox_mAP=map_)


#: model -> metric -> the paper's number, of every registered method
PAPER_RESULTS: Mapping[str, Mapping[str, float]] = paper_view(
    'paper_results')
#: quoted rows (another paper's method, never run) -> the method whose
#: README prints them
QUOTED_MODELS: Mapping[str, str] = paper_view('quoted_models')
#: models without a config of their own (e.g. pooled candidates of two
#: models) -> the method whose README prints them
MERGED_MODELS: Mapping[str, str] = paper_view('merged_models')
