# Copyright (c) mmlesion contributors. All rights reserved.
"""Rows that differ on purpose from the paper's setting: the variants.

A model that differs on purpose from the paper's setting of its row is a
*variant* (:data:`VARIANTS`, the one definition ``table.md``, ``--compare``,
the method README and the metafile's ``Paper Row`` follow): where the
paper's reading of the row is a model of its own, the paper's numbers
(:mod:`.paper_results`) are that model's and the variant is set beside
them; where it is not, the variant carries the paper's numbers and every
comparison says it is a variant.

A row whose paper setting the paper does not print legibly is our
*reading* of it (:data:`READ_ROWS`): its setting says so, and a variant set
beside it is set beside a reading, not beside the paper's stated setting.
"""
from typing import Dict, NamedTuple, Optional

from .paper_results import QUOTED_MODELS


class Variant(NamedTuple):
    """A model that differs from the paper's setting of its row.

    Args:
        what (str): what differs, in a few words.
        paper_reading (str, optional): the model that is the paper's
            reading of the row, a row of the same table; its paper numbers
            are the row's. None: no model is, the variant carries the
            paper's numbers and its comparison is marked.
    """
    what: str
    paper_reading: Optional[str] = None


#: ElixirNet's TruncatedRPN as we train it: Eq. (1) only weights the
#: features by ``p``; the paper says nothing of a loss on ``p``
TRPN_AUX = ("TRPN's p also trained by an auxiliary location loss, which "
            'the paper does not describe')
#: 3D-AG Tables V and VI (Sec. V-A: "we still can reduce unnecessary parts
#: by clipping black borders")
A3D_NO_CLIP = ('DeepLesion chunks not clipped to the body (Sec. V-A clips '
               'the black borders)')
_E9 = 'elixirnet-trpn-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-9slice'
#: LENS Table I's baseline as built here (configs/lens/README.md, "MULAN
#: baseline")
MULAN_DETECTOR_ONLY = (
    "MULAN's detector only (no mask, tag or score-refine branch), trained "
    "with the LENS rows' data, optimiser and schedule; the paper's row is "
    'the full MULAN')
#: model (config stem) -> how it differs from the paper's setting of its row
VARIANTS: Dict[str, Variant] = {
    'elixirnet-trpn_r50_fpn_4xb2-1x_deeplesion-3slice': Variant(
        TRPN_AUX, 'elixirnet-trpn-noaux_r50_fpn_4xb2-1x_deeplesion-3slice'),
    **{stem: Variant(TRPN_AUX) for stem in (
        'elixirnet-fig3geno_r50_c4_4xb2-1x_deeplesion-3slice',
        'elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice',
        'elixirnet-fig3geno_r50-dcnv2_fpn_4xb2-1x_deeplesion-3slice',
        'elixirnet-trpn-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice',
        _E9,
        'elixirnet-fig3geno_r50_fpn_4xb2-1x_kits19-3slice',
        'elixirnet-fig3geno_r50-dcnv2_fpn_4xb2-1x_kits19-3slice',
        'elixirnet-wo-rtm-fig3geno_r50_fpn_4xb2-ft-6e_deeplesion-3slice-'
        'multitype',
        'elixirnet-fig3geno_r50_fpn_4xb2-ft-6e_deeplesion-3slice-multitype')},
    'elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-9slice': Variant(
        "with the RTM, which our reading of the paper's 9-slice row "
        '(+ TRPN + ALB) leaves out; ' + TRPN_AUX, _E9),
    **{stem: Variant(A3D_NO_CLIP) for stem in (
        'rpn3d-focal_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d',
        'aggregated3d_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d',
        'rpn3d-focal_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d-'
        'lt48mm',
        'aggregated3d_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d-'
        'lt48mm')},
    'mulan_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice': Variant(
        MULAN_DETECTOR_ONLY),
}

#: models that are our reading of a paper row whose setting the paper does
#: not print legibly -> the row and what it is read as
READ_ROWS: Dict[str, str] = {
    _E9: ("Table 5's 9-slice row, whose module check marks are lost, read "
          'as + TRPN + ALB'),
}


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

