# Copyright (c) mmlesion contributors. All rights reserved.
"""Is every text of a matplotlib picture readable at its natural size?"""
from typing import List


def text_problems(fig, min_pt: float = 10.0) -> List[str]:
    """Texts under ``min_pt`` points and pairs of texts that overlap.

    Draws ``fig`` on its canvas and measures every visible, non-empty text
    artist with the renderer (``get_window_extent``).

    Args:
        fig: a matplotlib ``Figure`` with a canvas.
        min_pt (float): the smallest font size allowed, points.

    Returns:
        list[str]: one line per problem; empty when there is none.
    """
    from matplotlib.text import Text
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [t for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip()]
    problems = [f'{t.get_text()!r}: {t.get_fontsize():g} pt'
                for t in texts if t.get_fontsize() < min_pt]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:]:
            if box_a.overlaps(box_b):
                problems.append(f'{a!r} overlaps {b!r}')
    return problems
