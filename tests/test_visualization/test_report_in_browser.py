# Copyright (c) mmlesion contributors. All rights reserved.
"""``report.html`` laid out by a real browser (headless Chromium, Debian's
``chromium``; skipped, saying so, where there is none): its text and the
text drawn in its pictures readable at the size they are shown.

Thresholds, in CSS px at a device pixel ratio of 1 in a 1280 px wide
window (a laptop):

* the page's own text at least 12 px (the table's 13 px is the smallest);
* the text drawn in a picture at least 11 px as shown: its size in the PNG
  (at least 12 px, ``test_scan_pictures.py``) times the picture's
  displayed / natural width. 11 px leaves the pictures room to be shown a
  little smaller than their natural size (down to 11/12 of it) and no more:
  DejaVu Sans, the pictures' font, is wide, with a tall x-height, and its
  short labels still read at 11 px; the old report showed its key slices
  at 387 of 720 px, their legends at under 5 px.
"""
import pytest

from mmlesion.apis.whole_scan.model import DEMO_MODEL_WARNING
from mmlesion.apis.whole_scan.write import write_volume_results
from tests.helpers.report_browser import find_chromium, measure_page
from tests.helpers.scan_pictures import (crowded_scan_result,
                                         record_saved_pictures)

#: The page's smallest text, CSS px.
MIN_PAGE_TEXT_PX = 12.
#: The smallest text drawn in a picture, as shown, CSS px.
MIN_PICTURE_TEXT_PX = 11.


@pytest.fixture(scope='module')
def chromium():
    path = find_chromium()
    if path is None:
        pytest.skip('no Chromium found (chromium, chromium-browser or '
                    'google-chrome on the PATH, or MMLESION_CHROMIUM): '
                    'apt-get install chromium to lay the report out')
    return path


def _picture_name(alt: str) -> str:
    if alt == 'overview':
        return 'overview.png'
    return f"finding_{int(alt.split()[-1]):03d}.png"  # 'finding 3'


def test_report_reads_at_the_size_a_browser_shows_it(chromium, tmp_path,
                                                     monkeypatch):
    out = tmp_path / 'out'
    with record_saved_pictures(monkeypatch) as saved:
        write_volume_results(crowded_scan_result(DEMO_MODEL_WARNING), out,
                             max_pictures=3)
    layout = measure_page(out / 'report.html', chromium)
    assert layout.device_pixel_ratio == 1. and layout.viewport_width == 1280
    texts = layout.texts
    assert any(t.text.startswith('Warning: model') for t in texts)
    assert any(t.tag == 'td' for t in texts)
    small = [(t.tag, t.text[:30], t.font_px) for t in texts
             if t.font_px < MIN_PAGE_TEXT_PX]
    assert not small, small
    shown = {_picture_name(i.alt): i for i in layout.images}
    assert set(shown) == set(saved) == {
        'overview.png', 'finding_001.png', 'finding_002.png',
        'finding_003.png'}
    as_shown = {name: round(saved[name].smallest_text_px * image.scale, 2)
                for name, image in shown.items()}
    assert min(as_shown.values()) >= MIN_PICTURE_TEXT_PX, (
        as_shown, {n: round(i.scale, 3) for n, i in shown.items()})
