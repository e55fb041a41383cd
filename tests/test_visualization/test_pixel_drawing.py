# Copyright (c) mmlesion contributors. All rights reserved.
"""The PNG writer of the pictures drawn as pixels
(:func:`~mmlesion.visualization.pixel_drawing.save_pixels_png`): OpenCV
with unfiltered rows, or Pillow as before; the same pixels, in RGB."""
import numpy as np
import pytest
from PIL import Image

from mmlesion.visualization import pixel_drawing


@pytest.mark.parametrize('encoder', ['opencv', 'pillow'])
def test_the_png_holds_the_pixels_in_rgb(tmp_path, monkeypatch, encoder):
    """A picture of distinct red, green and blue areas and noise comes
    back as the same 8-bit RGB pixels (not BGR) from either encoder."""
    monkeypatch.setattr(pixel_drawing, 'PNG_ENCODER', encoder)
    pixels = np.random.default_rng(1).integers(0, 256, (30, 50, 3),
                                               dtype=np.uint8)
    pixels[:10, :10] = (255, 0, 0)
    pixels[10:20, :10] = (0, 255, 0)
    pixels[20:, :10] = (0, 0, 255)
    view = pixels[:, ::-1]  # not contiguous: written as it looks
    pixel_drawing.save_pixels_png(view, tmp_path / 'a.png')
    image = Image.open(tmp_path / 'a.png')
    assert image.mode == 'RGB' and image.size == (50, 30)
    assert np.array_equal(np.asarray(image), view)


def test_opencv_writes_the_same_pixels_as_pillow_at_their_level(
        tmp_path, monkeypatch):
    """Both encoders write a key-slice-like picture (a smooth slice with
    lines) at the same zlib level, to files of similar size."""
    yy, xx = np.mgrid[:120, :200]
    grey = ((np.sin(xx / 9.) + np.cos(yy / 7.)) * 60 + 128).astype(np.uint8)
    pixels = np.repeat(grey[..., None], 3, axis=2)
    pixels[40, 20:180] = (0, 255, 0)
    sizes = {}
    for encoder in ('opencv', 'pillow'):
        monkeypatch.setattr(pixel_drawing, 'PNG_ENCODER', encoder)
        path = tmp_path / f'{encoder}.png'
        pixel_drawing.save_pixels_png(pixels, path)
        assert np.array_equal(np.asarray(Image.open(path)), pixels)
        sizes[encoder] = path.stat().st_size
    # level 1 either way: neither file is raw (72 kB) nor far apart
    assert max(sizes.values()) < 72000 / 2
    assert sizes['opencv'] < 3 * sizes['pillow']


def test_an_unwritable_path_raises(tmp_path):
    with pytest.raises(OSError):
        pixel_drawing.save_pixels_png(np.zeros((4, 4, 3), np.uint8),
                                      tmp_path / 'missing' / 'a.png')
