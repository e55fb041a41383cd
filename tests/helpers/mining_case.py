# Copyright (c) mmlesion contributors. All rights reserved.
"""A hand-made mining case with known answers, for the tests of
:mod:`projects.lens.mining_breakdown` and
``projects/lens/tools/analyze_lens_mining.py``.

One patient ``P``, two series of 1 mm slices, 1 mm pixels, key slice 5
(at z = 0 mm); every lesion has semi-axes (5, 5, 1.5) mm, so it is present
on slices 4, 5 and 6 only.

- ``A`` (first study): lesion 0 at (20, 20), annotated on slice 5
  (embedding (1, 0)); one tracklet with its box on slices 3..7. Propagation
  mines slices 4 and 6 (key distance 1, true) and 3 and 7 (distance 2,
  false: the lesion has ended).
- ``B`` (follow-up, nothing annotated): lesion 0 at (40, 40), the same
  ``lesion_id`` as A's (follow-up missing), and lesion 1 at (80, 80).
  Tracklets: ``T1`` on lesion 0, slices 4..6, embedding distance 0.05,
  score 0.9; ``T2`` on no lesion, slice 5, distance 0.2, score 0.3; ``T3``
  on lesion 1, slice 5, distance 0.5, score 0.6. Single-type proposals on
  slice 5: lesion 1 (score 0.8, true) and (0, 0, 10, 10) (score 0.9,
  false).

With delta 0.15 (and sigma 0.5): propagation 2/4 true, intra-patient 3/3
(T1; finds lesion B0), cross-dataset 1/2 (finds lesion B1).
"""
from typing import List, Tuple

import numpy as np

from mmlesion.methods.lens.mining.strategies import (SeriesMining,
                                                     SliceProposals)

#: the delta the expected answers are for.
CASE_DELTA = 0.15


def _box(cx: float, cy: float, half: float = 5.) -> List[float]:
    return [cx - half, cy - half, cx + half, cy + half]


def _slice(z: int, items: List[Tuple[list, float, list]]) -> SliceProposals:
    """Proposals on one slice from (box, score, embedding) items."""
    return SliceProposals(
        z, np.array([b for b, _, _ in items], np.float32).reshape(-1, 4),
        np.array([s for _, s, _ in items], np.float32),
        np.array([e for _, _, e in items], np.float32).reshape(-1, 2))


def mining_case_series() -> List[SeriesMining]:
    """The two series, ready for :func:`~mmlesion.methods.lens.mining.mine_series`."""
    far = [0., 1.]  # embedding far from every annotation
    a = SeriesMining(
        series='A', patient='P',
        annotations={5: np.array([_box(20, 20)], np.float32)},
        annotation_embeddings=np.array([[1., 0.]], np.float32),
        proposals=[_slice(z, [(_box(20, 20), 0.9, far)])
                   for z in range(3, 8)])
    t1 = (_box(40, 40), 0.9, [1., 0.05])
    b = SeriesMining(
        series='B', patient='P',
        annotations={5: np.zeros((0, 4), np.float32)},
        annotation_embeddings=np.zeros((0, 2), np.float32),
        proposals=[
            _slice(4, [t1]),
            _slice(5, [t1, (_box(105, 105), 0.3, [1., 0.2]),
                       (_box(80, 80), 0.6, [1., 0.5])]),
            _slice(6, [t1])
        ],
        single_type_proposals=[
            SliceProposals(5, np.array([_box(80, 80), [0, 0, 10, 10]],
                                       np.float32),
                           np.array([0.8, 0.9], np.float32))
        ])
    return [a, b]


def _lesion(cx: float, cy: float, annotated: bool, lesion_id: int) -> dict:
    return dict(center_px=[cx, cy], center_mm=[cx, cy, 0.],
                semi_axes_mm=[5., 5., 1.5], annotated=annotated,
                lesion_id=lesion_id)


def mining_case_meta() -> dict:
    """The case's ``demo_meta.json`` content (the complete truth)."""
    common = dict(z_mm=0., slice_interval=1., spacing=1.)
    return dict(key_slices=[
        dict(common, file_name='A_005.png', followup=False,
             lesions=[_lesion(20, 20, True, 0)]),
        dict(common, file_name='B_005.png', followup=True,
             lesions=[_lesion(40, 40, False, 0),
                      _lesion(80, 80, False, 1)])
    ])
