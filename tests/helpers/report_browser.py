# Copyright (c) mmlesion contributors. All rights reserved.
"""Lay out an HTML page in a real headless browser (Chromium) and measure
it: the computed font size of every text, the displayed and natural width
of every image.

No Python dependency: a copy of the page gets a small script that measures
once the page has loaded and writes JSON into an element; ``chromium
--headless --dump-dom`` prints the DOM after the script ran, and the JSON
is read back from it. Debian's ``chromium`` package gives
``/usr/bin/chromium``; :func:`find_chromium` looks for it (or the path in
``MMLESION_CHROMIUM``).

Sizes are CSS pixels at a device pixel ratio of 1 (one CSS px, one screen
pixel): the size a reader sees on an ordinary screen.
"""
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple, Union

#: Names of a Chromium executable, in the order tried.
CHROMIUM_NAMES = ('chromium', 'chromium-browser', 'google-chrome',
                  'google-chrome-stable')
#: A laptop's browser window: 1280 CSS px wide.
WINDOW_SIZE = (1280, 900)

_OUT_ID = 'mmlesion-measure'
_SCRIPT = """<script>
window.addEventListener('load', function () {
  var texts = [];
  var walker = document.createTreeWalker(document.body,
                                         NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    var node = walker.currentNode;
    var text = node.textContent.trim();
    var el = node.parentElement;
    if (!text || el.tagName === 'SCRIPT' || el.tagName === 'STYLE') {
      continue;
    }
    var box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) { continue; }
    texts.push({tag: el.tagName.toLowerCase(), text: text.slice(0, 80),
                font_px: parseFloat(getComputedStyle(el).fontSize)});
  }
  var images = [];
  document.querySelectorAll('img').forEach(function (img) {
    var box = img.getBoundingClientRect();
    images.push({alt: img.alt, natural_width: img.naturalWidth,
                 natural_height: img.naturalHeight,
                 displayed_width: box.width, displayed_height: box.height});
  });
  var out = document.createElement('pre');
  out.id = '%s';
  out.textContent = JSON.stringify({
    texts: texts, images: images, viewport_width: window.innerWidth,
    device_pixel_ratio: window.devicePixelRatio});
  document.body.appendChild(out);
});
</script>""" % _OUT_ID


@dataclass
class PageText:
    """A text of the page.

    Args:
        tag (str): its element.
        text (str): its first 80 characters.
        font_px (float): its computed font size, CSS px.
    """
    tag: str
    text: str
    font_px: float


@dataclass
class PageImage:
    """An image of the page.

    Args:
        alt (str): its ``alt``.
        natural_width (int): the image's own width, pixels.
        natural_height (int): its own height.
        displayed_width (float): its width on the page, CSS px.
        displayed_height (float): its height on the page.
    """
    alt: str
    natural_width: int
    natural_height: int
    displayed_width: float
    displayed_height: float

    @property
    def scale(self) -> float:
        """Displayed / natural width: text drawn ``n`` px high in the image
        is ``n * scale`` CSS px high on the page."""
        return self.displayed_width / self.natural_width


@dataclass
class PageLayout:
    """What the browser laid out.

    Args:
        texts (list[PageText]): every visible text.
        images (list[PageImage]): every image.
        viewport_width (int): the window's width, CSS px.
        device_pixel_ratio (float): screen pixels per CSS px.
    """
    texts: List[PageText] = field(default_factory=list)
    images: List[PageImage] = field(default_factory=list)
    viewport_width: int = 0
    device_pixel_ratio: float = 1.


def find_chromium() -> Optional[str]:
    """The Chromium executable: ``MMLESION_CHROMIUM`` or the first of
    :data:`CHROMIUM_NAMES` on the ``PATH``; None if there is none."""
    given = os.environ.get('MMLESION_CHROMIUM')
    if given:
        return given if os.access(given, os.X_OK) else None
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def measure_page(page: Union[str, Path], chromium: str,
                 window_size: Tuple[int, int] = WINDOW_SIZE,
                 timeout: float = 60.) -> PageLayout:
    """Lay out an HTML page in headless Chromium and measure it.

    The page is copied (the original is not changed) with the measuring
    script before ``</body>``.

    Args:
        page (str | Path): the HTML file (self-contained: images inlined).
        chromium (str): the executable (:func:`find_chromium`).
        window_size (tuple[int, int]): the window, CSS px.
        timeout (float): seconds for the browser.

    Returns:
        PageLayout: the texts and images.

    Raises:
        RuntimeError: the browser failed or printed no measurement
            (naming its exit status and the end of its output).
    """
    source = Path(page).read_text(encoding='utf-8')
    if '</body>' not in source:
        raise ValueError(f'{page}: no </body>')
    with tempfile.TemporaryDirectory(prefix='mmlesion-browser-') as tmp:
        copy = Path(tmp) / 'page.html'
        copy.write_text(source.replace('</body>', _SCRIPT + '</body>', 1),
                        encoding='utf-8')
        width, height = window_size
        cmd = [chromium, '--headless', '--no-sandbox', '--disable-gpu',
               '--no-first-run', '--disable-extensions',
               '--force-device-scale-factor=1', '--hide-scrollbars',
               f'--user-data-dir={Path(tmp) / "profile"}',
               f'--window-size={width},{height}',
               '--virtual-time-budget=10000', '--dump-dom', copy.as_uri()]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)
    dom = proc.stdout.decode('utf-8', 'replace')
    found = re.search(f'<pre id="{_OUT_ID}">(.*?)</pre>', dom, re.S)
    if proc.returncode != 0 or not found:
        tail = proc.stderr.decode('utf-8', 'replace')[-2000:]
        raise RuntimeError(f'{chromium} exited with {proc.returncode} and no '
                           f'measurement; its output ends: {tail}')
    data = json.loads(html.unescape(found.group(1)))
    return PageLayout(
        texts=[PageText(**t) for t in data['texts']],
        images=[PageImage(**i) for i in data['images']],
        viewport_width=int(data['viewport_width']),
        device_pixel_ratio=float(data['device_pixel_ratio']))
