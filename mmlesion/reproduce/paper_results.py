# Copyright (c) mmlesion contributors. All rights reserved.
"""The papers' published numbers that a reproduced table is set beside.

Each registered method (:class:`~mmlesion.utils.method_spec.MethodSpec`'s
``paper_results``) gives one entry per model (its config's stem, or a name
of :data:`MERGED_MODELS`; ``<stem>@<criterion>``: the same model under
another criterion of its paper) in the keys of the table's metric map
(``execute.froc_map`` / ``luna16_map`` or the method's own: sensitivities
in percent, CPM as a fraction), each with the paper's table and row.
The same numbers are the "paper" column of the method's README
(``configs/<method>/README.md``); a test checks that every number here is
printed there. The metafiles carry no results: OpenMMLab's ``Results`` are
for models with weights.

A row of another paper's method that a table prints beside its own rows is
*quoted*: its numbers are here under a name of :data:`QUOTED_MODELS` (no
config; the table shows them and never runs the row).

A model that differs on purpose from the paper's setting of its row is a
*variant* (:mod:`.variants`).

The one table of paper numbers for the documents too: a number a document
quotes from a paper is one of these, or one of the other printed numbers and
gains of :mod:`.paper_text`.
"""
from typing import Dict, Mapping, Optional, Sequence

from mmlesion.utils.method_spec import MethodView

#: the FP rates per image of a DeepLesion 2D FROC row (0.5 .. 16)
FROC_ROW_RATES = (0.5, 1, 2, 3, 4, 8, 16)


def froc_row(sens: Sequence[float], map_: Optional[float] = None,
             rates: Sequence[float] = FROC_ROW_RATES) -> Dict[str, float]:
    """A DeepLesion 2D row: sensitivity (%) at ``rates`` FPs per image,
    and its COCO mAP when printed."""
    out = {f'sens@{r:g}': v for r, v in zip(rates, sens)}
    return out if map_ is None else dict(out, bbox_mAP=map_)


#: model -> metric -> the paper's number, of every registered method
PAPER_RESULTS: Mapping[str, Mapping[str, float]] = MethodView(
    'paper_results')
#: quoted rows (another paper's method, never run) -> the method whose
#: README prints them
QUOTED_MODELS: Mapping[str, str] = MethodView('quoted_models')
#: models without a config of their own (e.g. pooled candidates of two
#: models) -> the method whose README prints them
MERGED_MODELS: Mapping[str, str] = MethodView('merged_models')
