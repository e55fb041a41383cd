# Copyright (c) mmlesion contributors. All rights reserved.
"""A 3D finding: 2D boxes on consecutive slices stacked into one box
(:func:`~mmlesion.evaluation.functional.stack_slice_boxes`), the one type
of a stacked finding everywhere.
"""
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Sequence, Tuple

#: One stacked 2D box: ``(z, [x1, y1, x2, y2], score)``.
SliceBox = Tuple[int, List[float], float]

#: The fields :meth:`Finding3D.to_dict` writes before the score parts.
_FIELDS = ('bbox_3d', 'score', 'slice_range', 'key_slice', 'boxes_2d')


@dataclass
class Finding3D:
    """One 3D finding of a series or scan.

    Args:
        bbox_3d (list[float]): ``[x1, y1, z1, x2, y2, z2]``, x, y as the
            2D boxes, z in slice indices (``z1 = z_first - 0.5``, ``z2 =
            z_last + 0.5`` with the stacking's default half extent).
        score (float): the finding's score (the stacking's, or a
            re-scorer's final score).
        slice_range (tuple[int, int]): its first and last slice.
        key_slice (int): the slice of its highest-scoring 2D box.
        boxes_2d (list[tuple]): each stacked 2D box, ``(z, [x1, y1, x2,
            y2], score)`` in increasing z.
        score_parts (dict[str, float]): the scores a re-scorer combined
            into ``score``, by name (e.g. the detector's and a false
            positive reduction network's); empty before re-scoring.
    """
    bbox_3d: List[float]
    score: float
    slice_range: Tuple[int, int]
    key_slice: int
    boxes_2d: List[SliceBox]
    score_parts: Dict[str, float] = field(default_factory=dict)

    def rescored(self, score: float, **parts: float) -> 'Finding3D':
        """A copy (the boxes shared) with a new final ``score`` and the
        scores it was combined from added to its ``score_parts``."""
        return replace(self, score=score,
                       score_parts={**self.score_parts, **parts})

    def to_dict(self) -> dict:
        """The finding as a dict: ``bbox_3d``, ``score``, ``slice_range``,
        ``key_slice``, ``boxes_2d``, then the score parts by name (the
        values themselves, not copies)."""
        out = {name: getattr(self, name) for name in _FIELDS}
        out.update(self.score_parts)
        return out

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> 'Finding3D':
        """The finding of a dict of :meth:`to_dict` (read from a file):
        keys other than its fields are score parts.

        Args:
            record (Mapping): ``bbox_3d``, ``score``, ``slice_range``,
                ``key_slice``, ``boxes_2d`` and any score parts.

        Returns:
            Finding3D: ``slice_range`` a tuple, each 2D box a tuple.
        """
        return cls(
            bbox_3d=list(record['bbox_3d']), score=record['score'],
            slice_range=tuple(record['slice_range']),
            key_slice=record['key_slice'],
            boxes_2d=[(z, list(box), s) for z, box, s in record['boxes_2d']],
            score_parts={k: v for k, v in record.items()
                         if k not in _FIELDS})


def findings_by_score(findings: Sequence[Finding3D]) -> List[Finding3D]:
    """The findings by decreasing score (equal scores in their order)."""
    return sorted(findings, key=lambda f: -f.score)
