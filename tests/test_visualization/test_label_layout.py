# Copyright (c) mmlesion contributors. All rights reserved.
"""Score format, display scale and label placement of the lesion pictures."""
import itertools
import re

import pytest

from mmlesion.visualization.label_layout import (LabelSearch, display_scale,
                                                 format_score, outline_bands,
                                                 overlaps, place_labels,
                                                 text_size)


def test_format_score_two_decimals():
    assert format_score(.995 - 1e-6) == '0.99'
    assert format_score(.3) == '0.30'
    assert format_score(1) == '1.00'
    assert format_score(0.05) == '0.05'
    # never a percentage (mmdet writes 99.5 on its boxes)
    for v in (0., .123, .5, .9949, .999):
        assert re.fullmatch(r'[01]\.\d\d', format_score(v))


@pytest.mark.parametrize('shape,min_size,scale', [
    ((256, 256, 3), 512, 2),
    ((192, 192, 3), 512, 3),
    ((256, 600), 512, 2),
    ((512, 512, 3), 512, 1),
    ((800, 900, 3), 512, 1),
    ((256, 256, 3), 0, 1),
])
def test_display_scale(shape, min_size, scale):
    assert display_scale(shape, min_size) == scale
    short = min(shape[:2])
    assert short * scale >= min_size


def test_text_size_grows_with_text_and_font():
    w1, h1 = text_size('0.93', 8)
    w2, h2 = text_size('0.93 0.93', 8)
    w3, h3 = text_size('0.93', 16)
    assert w2 > w1 > 0 and h1 == h2 > 0
    assert w3 > w1 and h3 > h1
    # generous: 4 characters at 8 pt (11 px) are wider than 20 px
    assert w1 > 20


def test_overlaps_and_outline_bands():
    assert overlaps((0, 0, 10, 10), (5, 5, 15, 15))
    assert not overlaps((0, 0, 10, 10), (10, 0, 20, 10))  # touching
    bands = outline_bands((10, 20, 50, 60), 2.)
    assert len(bands) == 4
    assert overlaps(bands[0], (30, 19, 31, 21))  # on the top edge
    assert not any(overlaps(b, (25, 35, 35, 45)) for b in bands)  # inside


def test_labels_do_not_overlap_in_a_crowd():
    # ten nearly identical boxes (one lesion, many predictions) plus others
    boxes = [(100 + i, 100 + i, 160 + i, 160 + i) for i in range(10)]
    boxes += [(300, 50, 340, 90), (305, 55, 345, 95), (5, 5, 40, 40)]
    sizes = [text_size('0.93', 8)] * len(boxes)
    legend = (2., 2., 200., 40.)
    rects = place_labels(boxes, sizes, (512, 512), keep_out=[legend])
    placed = [r for r in rects if r is not None]
    assert len(placed) >= 10  # most of them find a spot
    for a, b in itertools.combinations(placed, 2):
        assert not overlaps(a, b)
    for r in placed:
        assert not overlaps(r, legend)
        assert 0 <= r[0] and r[2] <= 512 and 0 <= r[1] and r[3] <= 512
    # the first (best) label sits right above its box
    x1, y1 = boxes[0][:2]
    assert rects[0][0] == x1 and rects[0][3] <= y1
    assert y1 - rects[0][3] < 5


def test_labels_prefer_to_miss_gt_outlines():
    box = (100, 100, 150, 150)
    gt = (100, 80, 150, 100)  # a ground-truth box just above
    size = text_size('0.93', 8)
    bands = outline_bands(gt, 3.)
    (rect, ) = place_labels([box], [size], (512, 512), prefer_out=bands)
    assert not any(overlaps(rect, b) for b in bands)
    assert rect[1] >= 150  # went below the box
    # nothing but the outlines there: it still gets a spot
    (rect, ) = place_labels([box], [size], (160, 160), prefer_out=bands)
    assert rect is not None


def test_label_too_large_is_left_out():
    assert place_labels([(0, 0, 5, 5)], [(100., 10.)], (50, 50)) == [None]


def test_rings_place_every_label_of_a_dense_cluster():
    """Twenty boxes crowded in 40 px: without rings some numbers are left
    out; with them every one is placed, apart, inside the picture, the
    best still next to its box."""
    from mmlesion.visualization.label_layout import leader_line
    boxes = [(200 + (i * 7) % 40, 200 + (i * 11) % 40, 212 + (i * 7) % 40,
              212 + (i * 11) % 40) for i in range(20)]
    sizes = [text_size(str(i + 1), 10) for i in range(20)]
    assert None in place_labels(boxes, sizes, (450, 450))
    rects = place_labels(boxes, sizes, (450, 450),
                         search=LabelSearch(rings=8))
    assert None not in rects
    for a, b in itertools.combinations(rects, 2):
        assert not overlaps(a, b)
    for r in rects:
        assert 0 <= r[0] and r[2] <= 450 and 0 <= r[1] and r[3] <= 450
    assert leader_line(boxes[0], rects[0]) is None  # next to its box
    far = [leader_line(b, r) for b, r in zip(boxes, rects)]
    assert any(line is not None for line in far)  # tied by a line


def test_leader_line_joins_the_nearest_points():
    from mmlesion.visualization.label_layout import leader_line
    box = (10., 10., 20., 20.)
    assert leader_line(box, (10., 2., 20., 8.)) is None  # 2 px above
    # right of the box, level with it: straight across
    assert leader_line(box, (40., 12., 50., 18.)) == ((20., 15.), (40., 15.))
    # below right: corner to corner
    assert leader_line(box, (30., 30., 40., 36.)) == ((20., 20.), (30., 30.))
