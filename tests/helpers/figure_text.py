# Copyright (c) mmlesion contributors. All rights reserved.
"""Is every text of a matplotlib picture readable at its natural size?"""
from typing import List


def text_problems(fig, min_pt: float = 10.0) -> List[str]:
    """Texts under ``min_pt`` points, cut off or overlapping another.

    Draws ``fig`` on its canvas and measures every text artist it draws
    (visible, not empty, a tick label only within its axis' limits) with
    the renderer (``get_window_extent``).

    Args:
        fig: a matplotlib ``Figure`` with a canvas.
        min_pt (float): the smallest font size allowed, points.

    Returns:
        list[str]: one line per problem; empty when there is none.
    """
    from matplotlib.text import Text
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    # an axis keeps tick labels beyond its limits that it does not draw
    ticks, drawn = set(), set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                ticks.update((tick.label1, tick.label2))
            for tick in axis._update_ticks():
                drawn.update((tick.label1, tick.label2))
    texts = [t for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip() and (
                 t not in ticks or t in drawn)]
    problems = [f'{t.get_text()!r}: {t.get_fontsize():g} pt'
                for t in texts if t.get_fontsize() < min_pt]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    page = fig.bbox
    problems += [f'{text!r} is cut off' for text, box in boxes
                 if box.x0 < page.x0 - 1 or box.y0 < page.y0 - 1
                 or box.x1 > page.x1 + 1 or box.y1 > page.y1 + 1]
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:]:
            if box_a.overlaps(box_b):
                problems.append(f'{a!r} overlaps {b!r}')
    return problems
