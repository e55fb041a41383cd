# Copyright (c) mmlesion contributors. All rights reserved.
"""tools/misc/show_recist_masks.py writes overlay pictures."""
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from mmlesion.testing import shared_data_root

TOOL = (
    Path(__file__).resolve().parents[3] / 'tools' / 'misc' /
    'show_recist_masks.py')


def load_tool():
    spec = importlib.util.spec_from_file_location('show_recist_masks', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_draw_image_panels():
    tool = load_tool()
    image = np.full((128, 128, 3), 100, np.uint8)
    box = np.array([40., 40., 80., 70.])
    recist = np.array([[45, 55], [75, 55], [60, 45], [60, 65]], float)
    mask = np.zeros((128, 128), np.uint8)
    mask[45:66, 45:76] = 1
    pic = tool.draw_image(image, box[None], recist[None], [mask], ['t'])
    # full slice + one zoomed panel (+ 4 px gaps)
    assert pic.shape[0] == max(128, tool.PANEL + 18)
    assert pic.shape[1] == 128 + 4 + tool.PANEL + 4
    panel = pic[18:, 132:132 + tool.PANEL]
    assert (panel[..., 2] > panel[..., 0] + 20).any()  # red mask overlay
    assert (np.abs(panel.astype(int) - 100).sum(-1) == 0).any()  # context


def test_show_on_real_key_slices(tmp_path, capsys):
    root = shared_data_root()
    csv = None if root is None else (root / 'deeplesion' / 'annotations' /
                                     'DL_info_val.csv')
    if csv is None or not csv.is_file():
        pytest.skip('shared DeepLesion data is not available')
    tool = load_tool()
    out = tmp_path / 'vis'
    assert tool.main([
        '--csv',
        str(csv), '--skip-missing', '--out-dir',
        str(out), '--num', '2'
    ]) == 0
    pngs = sorted(out.glob('*.png'))
    assert len(pngs) == 2
    pic = cv2.imread(str(pngs[0]))
    assert pic is not None and pic.shape[0] >= 512 and pic.shape[1] > 512
    # existing pictures are kept without --force
    before = pngs[0].stat().st_mtime_ns
    assert tool.main([
        '--csv',
        str(csv), '--skip-missing', '--out-dir',
        str(out), '--num', '1'
    ]) == 0
    assert 'exists' in capsys.readouterr().err
    assert pngs[0].stat().st_mtime_ns == before
