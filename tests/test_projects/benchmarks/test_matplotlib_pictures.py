# Copyright (c) mmlesion contributors. All rights reserved.
"""The pictures as matplotlib drew them: a line of text drawn once and
pasted onto many figures."""
import numpy as np
from PIL import Image

from projects.benchmarks.matplotlib_pictures import (_rendered, paste_text,
                                                     pasted_texts,
                                                     pixel_figure)


def test_a_line_is_drawn_once_and_pasted_where_asked(tmp_path):
    pictures = []
    for i in range(2):
        fig = pixel_figure(300, 60)
        paste_text(fig, 'WARNING: demo', 150., 10., 14., color='#b00000',
                   weight='bold')
        assert pasted_texts(fig) == [('WARNING: demo', 14.)]
        fig.savefig(str(tmp_path / f'{i}.png'), dpi=fig.dpi)
        pictures.append(np.asarray(Image.open(tmp_path / f'{i}.png')))
    assert _rendered.cache_info().hits >= 1  # drawn once
    assert np.array_equal(pictures[0], pictures[1])
    assert pictures[0].shape[:2] == (60, 300)
    red = (pictures[0][..., 0] > 150) & (pictures[0][..., 1] < 100)
    rows, cols = np.flatnonzero(red.any(1)), np.flatnonzero(red.any(0))
    assert len(rows) and rows[0] >= 10 and rows[-1] < 10 + 20  # from y 10
    assert abs((cols[0] + cols[-1]) / 2 - 150) <= 2  # centred at x 150
    assert 8 <= rows[-1] - rows[0] + 1 <= 16  # ink of 14 px capitals
