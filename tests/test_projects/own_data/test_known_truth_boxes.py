# Copyright (c) mmlesion contributors. All rights reserved.
"""The box CSV of ``projects/own_data/known_truth.py --annotations boxes``:
each lesion of a synthetic scan's label map at its true place in world
millimetres (SimpleITK's geometry of the label map, an origin and a flipped
axis included) with its largest axial extent as the diameter, in the
converter's ``world`` format; no training."""
import csv

import numpy as np
import SimpleITK as sitk

from tests.helpers.tool_modules import load_tool


def test_box_csv_holds_the_lesions_true_centres(tmp_path):
    known_truth = load_tool('projects/own_data/known_truth.py')
    synth = known_truth.SyntheticSet(patients=1, shape=(12, 30, 36),
                                     spacing_mm=2., diameters_mm=(6., 14.),
                                     lesions=(2, 3), seed=3)
    assert known_truth.make_scans(tmp_path, synth) >= 4
    # a geometry that matters: an origin, y flipped, anisotropic spacing
    labels = sorted((tmp_path / 'labels').glob('*.nii.gz'))
    for path in labels:
        img = sitk.ReadImage(str(path))
        img.SetOrigin((-120.5, 40., 7.25))
        img.SetSpacing((0.8, 1.1, 2.5))
        img.SetDirection((1., 0., 0., 0., -1., 0., 0., 0., 1.))
        sitk.WriteImage(img, str(path))
    csv_path = tmp_path / 'boxes.csv'
    n = known_truth.write_box_csv(tmp_path, csv_path)
    with open(csv_path, newline='') as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ['seriesuid', 'coordX', 'coordY', 'coordZ',
                             'diameter_mm']
    truth = []
    for path in labels:
        img = sitk.ReadImage(str(path))
        stats = sitk.LabelShapeStatisticsImageFilter()
        stats.Execute(img)
        for label in stats.GetLabels():
            x, y, z, sx, sy, sz = stats.GetBoundingBox(label)
            centre = img.TransformContinuousIndexToPhysicalPoint(
                (x + (sx - 1) / 2, y + (sy - 1) / 2, z + (sz - 1) / 2))
            truth.append((path.name[:-len('.nii.gz')], *centre,
                          max(sx * 0.8, sy * 1.1)))
    assert n == len(rows) == len(truth)
    got = [(r['seriesuid'], *(float(r[k]) for k in (
        'coordX', 'coordY', 'coordZ', 'diameter_mm'))) for r in rows]
    for want in truth:
        near = [g for g in got if g[0] == want[0] and np.allclose(
            g[1:], want[1:], atol=2e-3)]
        assert len(near) == 1, (want, got)
