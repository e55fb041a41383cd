# Copyright (c) mmlesion contributors. All rights reserved.
"""Lesions given as boxes (a CSV's diameters) against the same lesions
given as masks: the planned HU window from the box's core is near the
masks' one, and "diameter" means the same (the largest axial extent)."""
import os.path as osp

import numpy as np
import pytest
import SimpleITK as sitk

import mmlesion.apps.own_data.fingerprint as fingerprint
from mmlesion.apps.own_data.dataset_plan import _window
from mmlesion.datasets.volumes import (box_center_world, load_ct_volume,
                                       volume_entry, write_annotation_file)

#: lesions: centre (z, y, x) voxels and semi-axes (z, y, x) in voxels
_LESIONS = [((10, 20, 14), (2., 2.5, 5.)), ((10, 16, 30), (2.5, 2., 3.5))]


def _scan(folder, name, rng):
    """A 3 mm body of fat (-100 HU) in air, a bone bar (700 HU) beside
    elongated soft-tissue lesions (30-50 HU); the lesions' label map."""
    shape = (20, 40, 44)
    z, y, x = np.ogrid[:shape[0], :shape[1], :shape[2]]
    arr = np.full(shape, -1000., np.float32)
    arr[:, 3:37, 3:41] = -100 + rng.normal(0, 10, (shape[0], 34, 38))
    arr[:, 24:27, 8:36] = 700  # bone below the lesions
    arr[:, 10:12, 8:36] = -900  # gas above them
    mask = np.zeros(shape, np.uint8)
    for (cz, cy, cx), (az, ay, ax) in _LESIONS:
        inside = ((z - cz) / az)**2 + ((y - cy) / ay)**2 + (
            (x - cx) / ax)**2 <= 1
        arr[inside] = rng.uniform(30, 50, inside.sum())
        mask[inside] = 1
    paths = []
    for kind, values in (('', arr.astype(np.int16)), ('_mask', mask)):
        img = sitk.GetImageFromArray(values)
        img.SetSpacing((3., 3., 3.))
        paths.append(osp.join(folder, f'{name}{kind}.nii.gz'))
        sitk.WriteImage(img, paths[-1])
    return paths


def _annotations(tmp_path, boxes):
    """The annotation file: masks and their boxes, or the cube around the
    sphere of each lesion's largest diameter (as a CSV of diameters)."""
    entries = []
    rng = np.random.default_rng(0)
    for name, split in (('a', 1), ('b', 3)):
        path, mask = _scan(str(tmp_path), name, rng)
        vol = load_ct_volume(path)
        anns = []
        for (cz, cy, cx), semi in _LESIONS:
            r = max(semi[1:]) + .5 if boxes else None
            bbox = ([cx - r, cy - r, cz - r, cx + r, cy + r, cz + r] if boxes
                    else [cx - semi[2] - .5, cy - semi[1] - .5,
                          cz - semi[0] - .5, cx + semi[2] + .5,
                          cy + semi[1] + .5, cz + semi[0] + .5])
            anns.append(dict(bbox=bbox, center_world=box_center_world(
                vol, bbox), diameter_mm=2 * r * 3 if boxes else -1,
                label=0, ignore=False))
        extra = {} if boxes else dict(mask_file=osp.basename(mask))
        entries.append(volume_entry(vol, name, osp.basename(path), anns,
                                    split=split, **extra))
    out = str(tmp_path / ('boxes.json' if boxes else 'masks.json'))
    write_annotation_file(out, 'toy', ['lesion'], entries)
    return out


def _fp(ann):
    return fingerprint.compute_fingerprint(fingerprint.FingerprintSettings(
        ann, show_progress=False, voxels_per_scan=5000))


def test_box_window_near_the_mask_window(tmp_path, monkeypatch):
    masks = _fp(_annotations(tmp_path, boxes=False))
    boxes = _fp(_annotations(tmp_path, boxes=True))
    lo, hi = _window(masks).value
    assert (lo, hi) == (-160, 240)  # 30-50 HU: 400 HU around 40
    got = _window(boxes).value
    assert abs(got[0] - lo) <= 40 and abs(got[1] - hi) <= 40
    # the whole inscribed sphere of the largest diameter holds fat, gas
    # and bone: a window far from the masks'
    monkeypatch.setattr(fingerprint, 'BOX_CORE', 1.)
    (tmp_path / 'wide').mkdir()
    wide = _window(_fp(_annotations(tmp_path / 'wide', boxes=True))).value
    assert wide[0] < lo - 200 or wide[1] > hi + 200
    # one meaning of diameter: the largest axial extent, for both
    assert boxes.splits['train'].lesion_diameter_mm.at(50) == pytest.approx(
        masks.splits['train'].lesion_diameter_mm.at(50), abs=3.1)
