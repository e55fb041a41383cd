# Copyright (c) mmlesion contributors. All rights reserved.
"""tools/analysis_tools/eval_recist_measurement.py on synthetic key slices
with known RECIST diameters."""
import csv
import importlib.util

import cv2
import numpy as np

from mmlesion.testing import repo_root
from tests.helpers.dl_info_rows import (lesion_row, write_dl_info_csv,
                                           write_key_slices)
from tests.helpers.figure_text import text_problems


def _tool():
    spec = importlib.util.spec_from_file_location(
        'eval_recist_measurement',
        repo_root() / 'tools' / 'analysis_tools' /
        'eval_recist_measurement.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_measures_synthetic_lesions_against_their_diameters(
        tmp_path, capsys):
    rows = [lesion_row(1, 10, (40, 40), 30, 16, angle_deg=20,
                       image_size=128),
            lesion_row(2, 12, (70, 80), 20, 12, angle_deg=-50,
                       image_size=128)]
    # each slice: soft tissue with a hypodense ellipse of the row's axes
    root = tmp_path / 'deeplesion'
    for row, (c, axes, ang) in zip(rows, [((40, 40), (30, 16), 20),
                                          ((70, 80), (20, 12), -50)]):
        hu = np.full((128, 128), 60.)
        mask = np.zeros((128, 128), np.uint8)
        cv2.ellipse(mask, (c, axes, ang), 1, -1)
        hu[mask > 0] = -20.
        write_key_slices(str(root / 'Images_png'), [row], hu)
    write_dl_info_csv(str(root / 'annotations' / 'DL_info_val.csv'), rows)
    out = tmp_path / 'out'
    tool = _tool()
    assert tool.main(['--data-root', str(root), '--out-dir', str(out)]) == 0
    text = capsys.readouterr().out
    assert '2 lesions on 2 key slices' in text
    assert '| long | 2 |' in text and '| short | 2 |' in text
    assert (out / 'bland_altman.png').stat().st_size > 5000
    assert (out / 'examples.png').stat().st_size > 5000
    with open(out / 'lesions.csv', newline='') as f:
        got = list(csv.DictReader(f))
    # a clean lesion is measured within 2.5 px (0.8 mm/px): the pixel
    # rectangles and the rasterised ellipse add up to ~2 px
    for r in got:
        assert abs(float(r['long']) - float(r['ref_long'])) < 2.
        assert abs(float(r['short']) - float(r['ref_short'])) < 2.
        assert r['source'] == 'grabcut'
    # both pictures: text of 10 pt or more, no two texts overlapping
    rows = tool.measure(str(root), tool.find_lesions(str(root)))
    for fig in (tool.bland_altman_figure(rows, tool.summarise(rows)),
                tool.examples_figure(rows, 3)):
        assert text_problems(fig) == []
    # nothing to measure: a clear error
    assert tool.main(['--data-root', str(tmp_path / 'none'), '--out-dir',
                      str(out)]) == 1
    assert 'DL_info' in capsys.readouterr().err
