# Copyright (c) mmlesion contributors. All rights reserved.
"""Stacking per-slice 2D boxes into 3D findings (docs/protocols.md §2).

LENS (stacking: Sec. IV-C; its 3D evaluation: Sec. VI-C) and the 2.5D
detectors run on a volume produce 2D boxes slice by slice; a 3D finding is a
chain of boxes on consecutive slices whose IoU with the previous box of the
chain exceeds a threshold (theta; Sec. VI-B sets theta = 0.5). Its x, y
extent is the score-weighted mean of its 2D boxes, its z extent the slices it
spans.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmlesion.structures.finding_3d import Finding3D, findings_by_score

#: mmdet's ``bbox_overlaps`` clamps the union at this value.
_UNION_EPS = 1e-6


def _box_iou(coords1: np.ndarray, area1: np.ndarray, coords2: np.ndarray,
             area2: np.ndarray) -> np.ndarray:
    """(m, n) float64 IoU of ``(4, m)`` and ``(4, n)`` coordinate rows with
    their areas: the operations of mmdet's :func:`bbox_overlaps` (``'iou'``,
    no +1 offset) in the same order, bit for bit, without its per-slice
    torch round trip (``benchmark_box_stacking.py``)."""
    x1, y1, x2, y2 = coords1[:, :, None]
    u1, v1, u2, v2 = coords2
    w = np.minimum(x2, u2)
    w -= np.maximum(x1, u1)
    h = np.minimum(y2, v2)
    h -= np.maximum(y1, v1)
    overlap = np.maximum(w, 0., out=w)
    overlap *= np.maximum(h, 0., out=h)
    union = area1[:, None] + area2
    union -= overlap
    overlap /= np.maximum(union, _UNION_EPS, out=union)
    return overlap


def _greedy_match(iou: np.ndarray,
                  linkable: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Matched rows and columns (in matching order) of a one-to-one greedy
    matching of the ``linkable`` pairs of an (m, n) IoU matrix: highest IoU
    first, ties to the lower row, then the lower column. The pairs are
    sorted once and taken when their row and column are both free."""
    num_rows, num_cols = iou.shape
    flat = np.flatnonzero(linkable)  # row-major order
    flat = flat[np.argsort(-iou.ravel()[flat], kind='stable')]
    rows, cols = np.divmod(flat, num_cols)
    take = ((np.bincount(rows, minlength=num_rows) == 1)[rows]
            & (np.bincount(cols, minlength=num_cols) == 1)[cols])
    contested = np.flatnonzero(~take)
    if len(contested):
        row_taken = bytearray(num_rows)
        col_taken = bytearray(num_cols)
        for i, r, c in zip(contested.tolist(), rows[contested].tolist(),
                           cols[contested].tolist()):
            if not row_taken[r] and not col_taken[c]:
                row_taken[r] = col_taken[c] = 1
                take[i] = True
    return rows[take], cols[take]


def _smaller_box_overlap(coords1: np.ndarray, area1: np.ndarray,
                         coords2: np.ndarray,
                         area2: np.ndarray) -> np.ndarray:
    """(m, n) intersection over the smaller box's area: 1 where one box
    lies inside the other."""
    x1, y1, x2, y2 = coords1[:, :, None]
    u1, v1, u2, v2 = coords2
    inter = (np.maximum(np.minimum(x2, u2) - np.maximum(x1, u1), 0.) *
             np.maximum(np.minimum(y2, v2) - np.maximum(y1, v1), 0.))
    return inter / np.maximum(np.minimum(area1[:, None], area2), _UNION_EPS)


@dataclass(frozen=True)
class StackSettings:
    """How :func:`stack_slice_boxes` links and scores the 2D boxes, and
    turns the chains into one finding per lesion.

    The defaults are the LENS stacking rule (Sec. IV-C) the paper tables
    use; whole-scan inference sets the lesion steps (``contain_thr``,
    ``join_gap``, ``merge_iou``, ``max_gap``, ``min_slices``) from a
    validation (:mod:`mmlesion.apis.whole_scan.settings`).

    Attributes:
        iou_thr (float): link when IoU > iou_thr. Defaults to 0.5.
        max_gap (int): slices without a matching box that a chain may
            bridge. Defaults to 0 (consecutive slices only).
        score_thr (float): 2D boxes with a lower score are dropped first.
        min_slices (int): drop findings spanning fewer slices (counting
            from the first to the last, gaps included), after the joins
            and merges. Defaults to 1.
        score_mode (str): ``'max'`` or ``'mean'``.
        slice_half_extent (float): half the z extent of one slice.
        contain_thr (float, optional): also link a box to a chain whose
            last box it overlaps by more than this fraction of the smaller
            box's area (a box lying mostly inside the other, as a lesion
            shrinks towards its ends). None: IoU only. Defaults to None.
        join_gap (int, optional): join two findings one after the other
            along z, at most this many slices apart, whose facing end boxes
            link (the rule above): one lesion broken into fragments. None:
            no joining. Defaults to None.
        merge_iou (float, optional): 3D non-maximum suppression of the
            findings at this 3D IoU (:func:`~mmlesion.structures.bbox_3d.
            nms_3d`), each suppressed finding fused into the one that
            suppressed it (parallel chains of one lesion). None: no merging.
            Defaults to None.
        merge_inside (float, optional): also fuse two findings where the
            smaller lies more than this fraction of its volume inside the
            other (a short chain beside a lesion's main one, shifted by part
            of a box: a low 3D IoU, but a second finding on the lesion to a
            reader). None: IoU only. Defaults to None.
    """
    iou_thr: float = 0.5
    max_gap: int = 0
    score_thr: float = 0.
    min_slices: int = 1
    score_mode: str = 'max'
    slice_half_extent: float = 0.5
    contain_thr: Optional[float] = None
    join_gap: Optional[int] = None
    merge_iou: Optional[float] = None
    merge_inside: Optional[float] = None

    def linkable(self, coords1: np.ndarray, area1: np.ndarray,
                 coords2: np.ndarray,
                 area2: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """The (m, n) IoU of two sets of boxes (``(4, m)`` coordinate
        rows and their areas) and whether each pair links."""
        iou = _box_iou(coords1, area1, coords2, area2)
        linkable = iou > self.iou_thr
        if self.contain_thr is not None:
            linkable |= _smaller_box_overlap(
                coords1, area1, coords2, area2) > self.contain_thr
        return iou, linkable


def stack_slice_boxes(slice_indices: Sequence[int],
                      boxes: Sequence[np.ndarray],
                      scores: Sequence[np.ndarray],
                      settings: StackSettings = StackSettings()
                      ) -> List[Finding3D]:
    """Link 2D boxes on consecutive slices into 3D findings.

    Slices are processed in increasing ``z``. A chain is extended on slice
    ``z`` by the box whose IoU (float64, mmdet's :func:`bbox_overlaps`, no
    +1 offset) with the chain's **last** box is the highest above
    ``iou_thr`` (strictly greater, docs/protocols.md §2), one box per chain
    and one chain per box (greedy, highest IoU first, ties to the chain that
    started first, then to the box listed first). A chain whose last box is
    more than ``max_gap + 1`` slices behind is closed; a box that extends no
    chain starts a new one.

    The finding's x1, y1, x2, y2 are the score-weighted means of its 2D
    boxes (the plain mean when the scores do not sum to more than 0);
    ``z1 = z_first - slice_half_extent``, ``z2 = z_last +
    slice_half_extent`` (with the default 0.5, continuous voxel coordinates
    as SimpleITK's, voxel centres at integers). Its score is the largest 2D
    score (``score_mode='max'``, the default; docs/protocols.md §2 does not
    say) or their mean (``'mean'``).

    Args:
        slice_indices (Sequence[int]): the slice index ``z`` of each entry
            of ``boxes`` (any order; several entries may share a slice).
        boxes (Sequence[np.ndarray]): per entry an (n, 4) array
            ``[x1, y1, x2, y2]``.
        scores (Sequence[np.ndarray]): per entry an (n,) array.
        settings (StackSettings): the link, drop and score rules.

    Returns:
        list[Finding3D]: findings sorted by decreasing score (equal scores
        in the order their chains were closed, those open at the last
        slice last, in the order they started), each with ``bbox_3d``
        ([x1, y1, z1, x2, y2, z2], floats), ``score``, ``slice_range``
        ((z_first, z_last), ints), ``key_slice`` (the slice of its
        highest-scoring 2D box) and ``boxes_2d`` (list of ``(z, [x1, y1,
        x2, y2], score)`` in increasing z).

    Raises:
        ValueError: inputs of different lengths or bad shapes (naming the
            entry), or a bad option.
    """
    if not len(slice_indices) == len(boxes) == len(scores):
        raise ValueError(
            f'stack_slice_boxes: {len(slice_indices)} slice indices, '
            f'{len(boxes)} box arrays and {len(scores)} score arrays; they '
            'must be of the same length')
    if settings.score_mode not in ('max', 'mean'):
        raise ValueError(f"score_mode must be 'max' or 'mean', got "
                         f'{settings.score_mode!r}')
    if settings.max_gap < 0 or settings.min_slices < 1:
        raise ValueError(f'max_gap must be >= 0 and min_slices >= 1, got '
                         f'{settings.max_gap} and {settings.min_slices}')
    for name, low, high in (('contain_thr', 0., 1.), ('merge_iou', 0., 1.),
                            ('merge_inside', 0., 1.), ('join_gap', 0, np.inf)):
        value = getattr(settings, name)
        if value is not None and not low <= value <= high:
            raise ValueError(f'{name} must be None or in [{low}, {high}], '
                             f'got {value}')
    per_slice: Dict[int, tuple] = {}
    for i, (z, b, s) in enumerate(zip(slice_indices, boxes, scores)):
        b = np.asarray(b, dtype=np.float64).reshape(-1, 4) if np.size(
            b) else np.zeros((0, 4))
        s = np.asarray(s, dtype=np.float64).reshape(-1)
        if len(b) != len(s):
            raise ValueError(f'stack_slice_boxes: entry {i} (slice {z}) has '
                             f'{len(b)} boxes but {len(s)} scores')
        if not np.isfinite(b).all() or not np.isfinite(s).all():
            raise ValueError(f'stack_slice_boxes: entry {i} (slice {z}) '
                             'has non-finite boxes or scores')
        keep = s >= settings.score_thr
        prev_b, prev_s = per_slice.get(int(z), (np.zeros((0, 4)), ()))
        per_slice[int(z)] = (np.concatenate([prev_b, b[keep]]),
                             np.concatenate([prev_s, s[keep]]))

    if not per_slice:
        return []
    slices = sorted(per_slice)
    sizes = [len(per_slice[z][1]) for z in slices]
    all_scores = np.concatenate([per_slice[z][1] for z in slices])
    all_boxes = np.concatenate([per_slice[z][0] for z in slices])
    coords = np.ascontiguousarray(all_boxes.T)
    areas = (coords[2] - coords[0]) * (coords[3] - coords[1])
    box_z = np.repeat(np.asarray(slices, dtype=np.int64), sizes)
    # every box gets the number of its chain; chains are numbered as they
    # start, so the boxes of a chain are in increasing z in all_boxes
    chain_of = np.empty(len(all_scores), dtype=np.int64)
    finished: List[np.ndarray] = []  # chain numbers in the order they close
    last = np.zeros(0, dtype=np.int64)  # last box of the open chains
    num_chains = start = 0
    for z, size in zip(slices, sizes):
        stop = start + size
        # close the chains that can no longer be extended
        closed = z - box_z[last] > settings.max_gap + 1
        if closed.any():
            finished.append(chain_of[last[closed]])
            last = last[~closed]
        if len(last) and size:
            rows, cols = _greedy_match(*settings.linkable(
                coords[:, last], areas[last], coords[:, start:stop],
                areas[start:stop]))
            cols += start
            chain_of[cols] = chain_of[last[rows]]
            last[rows] = cols
            unmatched = np.ones(size, dtype=bool)
            unmatched[cols - start] = False
            new = np.flatnonzero(unmatched) + start
        else:
            new = np.arange(start, stop)
        chain_of[new] = np.arange(num_chains, num_chains + len(new))
        num_chains += len(new)
        last = np.concatenate([last, new])
        start = stop
    finished.append(chain_of[last])

    # the boxes chain by chain, in increasing z within each
    order = np.argsort(chain_of, kind='stable')
    box_z, all_boxes, all_scores = (box_z[order], all_boxes[order],
                                    all_scores[order])
    lengths = np.bincount(chain_of, minlength=num_chains)
    firsts = np.cumsum(lengths) - lengths
    chains = np.concatenate(finished)  # in the order they closed
    lesion_steps = any(getattr(settings, name) is not None for name in (
        'join_gap', 'merge_iou', 'merge_inside'))
    if not lesion_steps:  # else after the joins and merges
        chains = chains[~(box_z[firsts[chains] + lengths[chains] - 1] -
                          box_z[firsts[chains]] + 1 < settings.min_slices)]
    # per chain: x1, y1, x2, y2, score and the key slice's box, for the
    # chains of one length at a time: numpy reduces each row of a (chains,
    # length) array as it would the chain's own array, in the same order,
    # so the sums are bit for bit those of one chain at a time (the tests
    # check this against a chain-by-chain reference)
    xy = np.empty((num_chains, 4))
    score = np.empty(num_chains)
    key = np.empty(num_chains, dtype=np.int64)
    for length in np.unique(lengths[chains]).tolist():
        group = chains[lengths[chains] == length]
        index = firsts[group][:, None] + np.arange(length)
        tb, ts = all_boxes[index], all_scores[index]
        weights = np.where((ts.sum(1) > 0)[:, None], ts, 1.)
        xy[group] = (tb * weights[:, :, None]).sum(1) / weights.sum(
            1)[:, None]
        score[group] = (ts.max(1) if settings.score_mode == 'max'
                        else ts.mean(1))
        key[group] = firsts[group] + ts.argmax(1)
    z_list = box_z.tolist()
    boxes_2d = list(zip(z_list, all_boxes.tolist(), all_scores.tolist()))
    findings = []
    firsts, ends = firsts[chains], firsts[chains] + lengths[chains]
    for first, end, (x1, y1, x2, y2), s, k in zip(
            firsts.tolist(), ends.tolist(), xy[chains].tolist(),
            score[chains].tolist(), key[chains].tolist()):
        z_first, z_last = z_list[first], z_list[end - 1]
        findings.append(
            Finding3D(
                bbox_3d=[
                    x1, y1, z_first - settings.slice_half_extent, x2, y2,
                    z_last + settings.slice_half_extent
                ],
                score=s,
                slice_range=(z_first, z_last),
                key_slice=z_list[k],
                boxes_2d=boxes_2d[first:end]))
    if lesion_steps:
        findings = [
            f for f in _merge_3d(_join_along_z(
                findings_by_score(findings), settings), settings)
            if f.slice_range[1] - f.slice_range[0] + 1 >= settings.min_slices
        ]
    return findings_by_score(findings)


def fuse_findings(members: Sequence[Finding3D],
                  settings: StackSettings) -> Finding3D:
    """One finding of several of one lesion: on each slice the
    highest-scoring of their 2D boxes (ties to the finding listed first),
    then x, y, z, score and key slice as :func:`stack_slice_boxes` makes
    them of one chain."""
    best: Dict[int, tuple] = {}
    for f in members:
        for z, box, s in f.boxes_2d:
            if z not in best or s > best[z][2]:
                best[z] = (z, box, s)
    boxes_2d = [best[z] for z in sorted(best)]
    tb = np.array([b for _, b, _ in boxes_2d], np.float64)
    ts = np.array([s for _, _, s in boxes_2d], np.float64)
    weights = ts if ts.sum() > 0 else np.ones_like(ts)
    x1, y1, x2, y2 = ((tb * weights[:, None]).sum(0) / weights.sum()).tolist()
    z_first, z_last = boxes_2d[0][0], boxes_2d[-1][0]
    half = settings.slice_half_extent
    return Finding3D(
        bbox_3d=[x1, y1, z_first - half, x2, y2, z_last + half],
        score=float(ts.max() if settings.score_mode == 'max' else ts.mean()),
        slice_range=(z_first, z_last),
        key_slice=boxes_2d[int(ts.argmax())][0], boxes_2d=boxes_2d)


def _ends(findings: Sequence[Finding3D]) -> Tuple[np.ndarray, ...]:
    """The findings' first and last slices and their first and last 2D
    boxes as ``(4, n)`` coordinate rows with their areas."""
    first = np.array([f.slice_range[0] for f in findings], np.int64)
    last = np.array([f.slice_range[1] for f in findings], np.int64)
    out = [first, last]
    for end in (0, -1):
        coords = np.array([f.boxes_2d[end][1] for f in findings],
                          np.float64).reshape(-1, 4).T.copy()
        out += [coords, (coords[2] - coords[0]) * (coords[3] - coords[1])]
    return tuple(out)


def _join_along_z(findings: List[Finding3D],
                  settings: StackSettings) -> List[Finding3D]:
    """Join fragments of one lesion along z (``settings.join_gap``): by
    decreasing score, a finding takes every other that starts (ends) at
    most ``join_gap`` slices after its end (before its start) and whose
    facing end box links with its own (the first such in the list each
    time), until none is left to take.

    The candidates of a finding are tested all at once: the same float64
    operations, pair by pair, as one pair at a time."""
    if settings.join_gap is None or len(findings) < 2:
        return findings
    alive = list(findings)
    table = list(_ends(alive))
    i = 0
    while i < len(alive):
        first, last, head, head_area, tail, tail_area = table
        # g after f: f's last box faces g's first; g before f: the reverse
        after = first > last[i]
        before = last < first[i]
        gap = np.where(after, first - last[i], first[i] - last) - 1
        candidate = (after | before) & (gap <= settings.join_gap)
        candidate[i] = False
        joins = np.zeros(len(alive), bool)
        for side, own, own_area, other, other_area in (
                (after, tail, tail_area, head, head_area),
                (before, head, head_area, tail, tail_area)):
            pick = np.flatnonzero(candidate & side)
            if len(pick):
                joins[pick] = settings.linkable(
                    own[:, i:i + 1], own_area[i:i + 1], other[:, pick],
                    other_area[pick])[1][0]
        hits = np.flatnonzero(joins)
        if not len(hits):  # nothing (more) to take: the next finding
            i += 1
            continue
        j = int(hits[0])
        alive[i] = fuse_findings([alive[i], alive[j]], settings)
        for array, value in zip(table, _ends([alive[i]])):
            array[..., i] = value[..., 0]
        table = [np.delete(array, j, axis=-1) for array in table]
        del alive[j]
        i -= j < i
    return alive


def _merge_3d(findings: List[Finding3D],
              settings: StackSettings) -> List[Finding3D]:
    """3D NMS of the findings (highest score first) at ``settings.
    merge_iou`` (3D IoU) or ``settings.merge_inside`` (the smaller
    finding's volume inside the other), each suppressed one fused into the
    finding that suppressed it (:func:`fuse_findings`), again until no two
    findings overlap so: a fused finding spans its parts, so it may now
    overlap one that the first pass left apart. The greedy loop of
    :func:`~mmlesion.structures.bbox_3d.nms_3d`, kept here since the
    fusion needs which finding suppressed which."""
    if settings.merge_iou is None and settings.merge_inside is None:
        return findings
    import torch

    from mmlesion.structures.bbox_3d import bbox_overlaps_3d
    while len(findings) > 1:
        findings = findings_by_score(findings)
        boxes = torch.tensor([f.bbox_3d for f in findings],
                             dtype=torch.float64)
        over = np.zeros((len(findings), len(findings)), bool)
        if settings.merge_iou is not None:
            over |= (bbox_overlaps_3d(boxes, boxes) >
                     settings.merge_iou).numpy()
        if settings.merge_inside is not None:
            # intersection over the row's volume; the larger of the two:
            # over the smaller finding's
            inside = bbox_overlaps_3d(boxes, boxes, mode='iof').numpy()
            over |= np.maximum(inside, inside.T) > settings.merge_inside
        taken = np.zeros(len(findings), bool)
        out = []
        for i in range(len(findings)):
            if taken[i]:
                continue
            group = np.flatnonzero(over[i] & ~taken)
            group = group[group != i]
            taken[i] = True
            taken[group] = True
            out.append(findings[i] if not len(group) else fuse_findings(
                [findings[i]] + [findings[k] for k in group.tolist()],
                settings))
        if len(out) == len(findings):
            return out
        findings = out
    return findings
