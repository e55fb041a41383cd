# Copyright (c) mmlesion contributors. All rights reserved.
"""The demo set's val chunks as scans with their lesions in 3D
(``mmlesion/apps/demo/val_scans.py``, what ``tools/run_demo.py``
calibrates its per-scan operating point on)."""
import json
import math

import numpy as np

from mmlesion.apps.demo.val_scans import ellipsoid_box, write_val_scans
from mmlesion.datasets.deeplesion.dl_info import parse_dl_info


def test_the_box_of_a_turned_ellipsoid_against_its_sampled_outline():
    lesion = dict(center_px=[50., 60.], center_mm=[0., 0., 30.],
                  semi_axes_mm=[12., 5., 7.], angle=.6)
    box = ellipsoid_box(lesion, spacing=.8, z_offset=20., interval=2.)
    t = np.linspace(0, 2 * math.pi, 100001)
    u, v = 12 * np.cos(t), 5 * np.sin(t)  # mm, then turned
    x = 50 + (u * math.cos(.6) - v * math.sin(.6)) / .8
    y = 60 + (u * math.sin(.6) + v * math.cos(.6)) / .8
    np.testing.assert_allclose(box, [x.min(), y.min(), 5 - 3.5, x.max(),
                                     y.max(), 5 + 3.5], atol=1e-6)


def test_every_val_key_slice_lesion_lies_in_a_chunk_box(tiny_demo_root,
                                                        tmp_path):
    path = write_val_scans(str(tiny_demo_root), str(tmp_path))
    volumes = json.loads(path.read_text())['volumes']
    rows = [r for r in parse_dl_info(tiny_demo_root / 'DL_info.csv')
            if r.split == 2]
    assert volumes and all((tmp_path / v['file']).is_file()
                           for v in volumes)
    for row in rows:  # the release's own key-slice boxes as the reference
        vol = next(v for v in volumes if v['id'].startswith(
            row.series_name + '_') and int(v['id'][-7:-4]) <=
            row.key_slice_index <= int(v['id'][-3:]))
        z = row.key_slice_index - int(vol['id'][-7:-4])
        cx, cy = (row.bbox[0] + row.bbox[2]) / 2, (row.bbox[1] +
                                                   row.bbox[3]) / 2
        assert any(b[0] <= cx <= b[3] and b[1] <= cy <= b[4]
                   and b[2] <= z <= b[5]
                   for b in (a['bbox'] for a in vol['annotations'])), (
                       row, vol['annotations'])
