# Copyright (c) mmlesion contributors. All rights reserved.
"""The DeepLesion size source of the study generator: sizes follow the real
table, RECIST end points are perpendicular and inside the lesion,
distractors (vessels, bowel) are present and unlabeled, lesion types are
tied to their organ."""
import math

import numpy as np
import pytest
from scipy import stats

from mmlesion.apps.demo.anatomy import Tissue
from mmlesion.utils import shared_data_root
from projects.study_demo.synthetic.deeplesion import (StudyDataConfig,
                                                      StudyDemoGenerator)
from projects.study_demo.synthetic.sizes import (BUILTIN_LONG_MM_QUANTILES,
                                                 BUILTIN_RATIO_QUANTILES,
                                                 LesionSizeTable, size_table)

_ANN = (None if shared_data_root() is None else
        shared_data_root() / 'deeplesion' / 'annotations')
needs_real = pytest.mark.skipif(
    _ANN is None or not (_ANN / 'DL_info_val.csv').is_file(),
    reason='$MMLESION_SHARED_DATA/deeplesion/annotations absent')

# host organ of each coarse type's centre (the type-context link)
_HOST = {4: Tissue.LIVER, 5: Tissue.LUNG, 6: Tissue.KIDNEY,
         1: Tissue.BONE_MARROW}


@pytest.fixture(scope='module')
def planned():
    gen = StudyDemoGenerator(num_train=60, num_val=0, num_test=0,
                             size_source='deeplesion_quantiles', seed=3)
    return gen, gen.csv_rows()


def _sizes(rows):
    long_mm, ratio, types = [], [], []
    for r in rows:
        d = [float(v) for v in r[7].split(',')]
        sp = float(r[12].split(',')[0])
        long_mm.append(d[0] * sp)
        ratio.append(d[1] / d[0])
        types.append(int(r[9]))
    return np.array(long_mm), np.array(ratio), np.array(types)


def test_bad_size_source():
    with pytest.raises(ValueError, match='size_source'):
        StudyDataConfig(size_source='lidc').validate()


def test_missing_files_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='DL_info_val.csv'):
        size_table('deeplesion', str(tmp_path))


def test_size_distribution_matches_table(planned):
    """KS distance of long axis and short / long ratio to the same table
    (type-matched) on the generated key slices' RECIST measurements."""
    _, rows = planned
    long_mm, ratio, types = _sizes(rows)
    assert len(long_mm) >= 100
    table = LesionSizeTable.builtin()
    rng = np.random.default_rng(0)
    ref = np.array([table.sample(rng, t) for t in np.repeat(types, 20)])
    assert stats.ks_2samp(long_mm, ref[:, 0]).statistic < .12
    assert stats.ks_2samp(ratio, ref[:, 1]).statistic < .12
    # the built-in generator's own model is clearly another distribution
    # (so the test can fail): its ratios are uniform in [0.55, 0.95]
    assert (ratio < .5).mean() > .05


@needs_real
def test_builtin_quantiles_are_the_real_ones():
    real = size_table('deeplesion', str(_ANN))
    long_q, ratio_q = real.quantiles()
    for t, q in BUILTIN_LONG_MM_QUANTILES.items():
        np.testing.assert_allclose(long_q[t], q, atol=.051)
    np.testing.assert_allclose(ratio_q, BUILTIN_RATIO_QUANTILES, atol=6e-4)
    assert sum(len(v) for v in real.long_mm.values()) == 9816


def test_recist_perpendicular_and_inside(planned):
    gen, _ = planned
    for s in gen.plan():
        for key in s.keys:
            for les in key.lesions:
                pts = les.recist_mm(key.z)
                long_v, short_v = pts[1] - pts[0], pts[3] - pts[2]
                cos = abs(long_v @ short_v) / (
                    np.linalg.norm(long_v) * np.linalg.norm(short_v))
                assert cos < 1e-6
                assert np.linalg.norm(long_v) >= np.linalg.norm(short_v)
                a, b = les.cross_section(key.z)
                ca, sa = math.cos(les.angle), math.sin(les.angle)
                d = pts - np.asarray(les.center[:2])
                u = (d[:, 0] * ca + d[:, 1] * sa) / a
                v = (-d[:, 0] * sa + d[:, 1] * ca) / b
                assert np.all(u**2 + v**2 <= 1. + 1e-6)


def test_distractors_unlabeled_and_type_context(planned):
    gen, rows = planned
    n_vessel = n_bowel = 0
    checked = 0
    for s in gen.plan():
        for key in s.keys:
            hu, labels = s.phantom.render(key.z, s.grid)
            boxes = [r['box_px'] for r in gen._rows_for_key(
                np.random.default_rng(0), s, key)]
            free = np.ones(labels.shape, bool)
            for x0, y0, x1, y1 in boxes:
                free[int(y0):int(y1) + 1, int(x0):int(x1) + 1] = False
            n_vessel += int((labels[free] == Tissue.VESSEL).sum())
            n_bowel += int((labels[free] == Tissue.BOWEL).sum())
            for les in key.lesions:
                if les.lesion_type in _HOST:
                    col, row = s.grid.mm_to_pixel(*les.center[:2])
                    hu0, lab0 = s.phantom.render(
                        key.z, s.grid, with_lesions=False)
                    assert lab0[int(round(row)),
                                int(round(col))] == _HOST[les.lesion_type]
                    checked += 1
            s.phantom.clear_cache()
    # vessels and bowel loops outside every labelled box: unlabeled
    # lesion-like structures (false-positive candidates)
    assert n_vessel > 1000 and n_bowel > 1000
    assert checked > 20
