# Copyright (c) mmlesion contributors. All rights reserved.
"""Rows that differ on purpose from the paper's setting (variants,
:data:`VARIANTS`) and rows that are our reading of a setting the paper does
not print legibly (:data:`READ_ROWS`): the one definition ``table.md``,
``--compare``, the method README and the metafile's ``Paper Row`` follow
(docs/reproduce.md).
"""
from typing import Mapping

from .paper_results import QUOTED_MODELS
from .paper_tables import Variant, paper_view


#: model (config stem) -> how it differs from the paper's setting of its
#: row (each registered method's ``variants``)
VARIANTS: Mapping[str, Variant] = paper_view('variants')
#: models that are our reading of a paper row whose setting the paper does
#: not print legibly -> the row and what it is read as (each registered
#: method's ``read_rows``)
READ_ROWS: Mapping[str, str] = paper_view('read_rows')


def row_setting(model: str) -> str:
    """How ``table.md`` and ``--compare`` name a row's setting: ``paper``,
    ``quoted`` (another paper's row, not run) or ``variant: <what>``, and
    for a row of :data:`READ_ROWS`, that it is our reading of the row."""
    if model in QUOTED_MODELS:
        return 'quoted'
    variant = VARIANTS.get(model)
    text = 'paper' if variant is None else f'variant: {variant.what}'
    if model in READ_ROWS:
        text += f'; our reading of the paper\'s row: {READ_ROWS[model]}'
    return text

