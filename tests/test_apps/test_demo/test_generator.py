# Copyright (c) mmlesion contributors. All rights reserved.
import csv
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from mmlesion.datasets.deeplesion.dl_info import DL_INFO_COLUMNS
from mmlesion.apps.demo import (BOX_PADDING, META_FILE, SPLIT_CODES,
                                DeepLesionDemoGenerator, DemoDataConfig,
                                generate_demo_deeplesion)
from mmlesion.testing import shared_data_root
from tests.helpers.demo_sets import (dataset_digest, demo_hu, demo_meta,
                                     demo_rows)

# Tiny but complete: every split, 1/2/5 mm series, 128 px slices.
TINY = dict(
    num_train=6, num_val=3, num_test=3, image_size=128, context_mm=4.,
    unannotated_prob=.5, noisy_prob=.1)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('demo') / 'demo_deeplesion'
    generate_demo_deeplesion(root, seed=0, **TINY)
    return root


def _floats(text: str):
    return [float(v) for v in text.split(', ')]


def test_deterministic_bytes(tiny, tmp_path):
    again = tmp_path / 'again'
    generate_demo_deeplesion(again, seed=0, **TINY)
    assert dataset_digest(again) == dataset_digest(tiny)
    other = tmp_path / 'other'
    generate_demo_deeplesion(other, seed=1, **TINY)
    assert dataset_digest(other) != dataset_digest(tiny)


def test_layout_and_counts(tiny):
    assert sorted(p.name for p in tiny.iterdir()) == [
        'DL_info.csv', 'Images_png', META_FILE
    ]
    rows = demo_rows(tiny)
    keys = {}
    for r in rows:
        keys.setdefault(r['Train_Val_Test'], set()).add(r['File_name'])
    assert {k: len(v) for k, v in keys.items()} == {
        str(SPLIT_CODES['train']): TINY['num_train'],
        str(SPLIT_CODES['val']): TINY['num_val'],
        str(SPLIT_CODES['test']): TINY['num_test'],
    }
    for folder in (tiny / 'Images_png').iterdir():
        assert len(folder.name) == 12 and folder.name.count('_') == 2
        for png in folder.iterdir():
            assert png.suffix == '.png' and len(png.stem) >= 3
    # no temporary folder left beside the output
    assert [p.name for p in tiny.parent.iterdir()] == [tiny.name]


def test_csv_header_matches_official(tiny):
    with open(tiny / 'DL_info.csv', newline='') as f:
        header = next(csv.reader(f))
    assert tuple(header) == DL_INFO_COLUMNS
    assert len(header) == 18
    root = shared_data_root()
    real = None if root is None else (
        root / 'deeplesion' / 'annotations' / 'DL_info_val.csv')
    if real is None or not real.is_file():
        pytest.skip('shared DeepLesion annotations are not available')
    with open(real, newline='') as f:
        assert next(csv.reader(f)) == header


def test_csv_rows_follow_official_format(tiny):
    text = (tiny / 'DL_info.csv').read_text()
    assert '\r' not in text
    first = text.splitlines()[1]
    # multi-number fields are quoted "a, b", single numbers are bare
    assert first.count('"') == 2 * 8
    rows = demo_rows(tiny)
    assert rows
    for r in rows:
        patient, study, series, key = r['File_name'][:-4].split('_')
        assert len(patient) == 6 and len(study) == 2 and len(series) == 2
        assert int(patient) == int(r['Patient_index'])
        assert int(study) == int(r['Study_index'])
        assert int(series) == int(r['Series_ID'])
        assert int(key) == int(r['Key_slice_index'])
        pts = np.array(_floats(r['Measurement_coordinates'])).reshape(4, 2)
        box = _floats(r['Bounding_boxes'])
        long_px, short_px = _floats(r['Lesion_diameters_Pixel_'])
        assert long_px == pytest.approx(
            np.linalg.norm(pts[0] - pts[1]), abs=1e-3)
        assert short_px == pytest.approx(
            np.linalg.norm(pts[2] - pts[3]), abs=1e-3)
        assert long_px >= short_px > 0
        size = [int(v) for v in r['Image_size'].split(', ')]
        assert size == [TINY['image_size']] * 2
        # 1-based: everything within [1, size]
        assert min(box) >= 1 and max(box) <= size[0]
        assert pts.min() >= 1 and pts.max() <= size[0]
        if r['Possibly_noisy'] == '0':
            # box = RECIST extent +- 5 px, as in the released rows
            assert box[0] == pytest.approx(pts[:, 0].min() - BOX_PADDING,
                                           abs=2e-3)
            assert box[1] == pytest.approx(pts[:, 1].min() - BOX_PADDING,
                                           abs=2e-3)
            assert box[2] == pytest.approx(pts[:, 0].max() + BOX_PADDING,
                                           abs=2e-3)
            assert box[3] == pytest.approx(pts[:, 1].max() + BOX_PADDING,
                                           abs=2e-3)
            # long and short axes are perpendicular (up to reader jitter)
            u, v = pts[1] - pts[0], pts[3] - pts[2]
            cos = abs(u @ v) / (np.linalg.norm(u) * np.linalg.norm(v))
            assert cos < .3
        loc = _floats(r['Normalized_lesion_location'])
        assert len(loc) == 3 and all(0 < v < 1 for v in loc)
        assert 1 <= int(r['Coarse_lesion_type']) <= 8
        sx, sy, sz = _floats(r['Spacing_mm_px_'])
        assert sx == sy and sz in (1., 2., 5.)
        lo, hi = [int(v) for v in r['Slice_range'].split(', ')]
        assert lo <= int(key) <= hi
        for index in range(lo, hi + 1):  # the whole range is stored
            assert (tiny / 'Images_png' / r['File_name'][:12] /
                    f'{index:03d}.png').is_file()
        assert (int(key) - lo) * sz >= TINY['context_mm']
        assert (hi - int(key)) * sz >= TINY['context_mm']
        w_lo, w_hi = _floats(r['DICOM_windows'])
        assert w_lo < w_hi
        assert r['Patient_gender'] in ('M', 'F')
        assert r['Patient_age'] == 'NaN' or 18 <= int(r['Patient_age']) < 100
    assert {r['Possibly_noisy'] for r in rows} <= {'0', '1'}


def test_slices_are_16bit_with_realistic_hu(tiny):
    rows = demo_rows(tiny)
    file_name = rows[0]['File_name']
    hu = demo_hu(tiny, file_name)
    assert hu.shape == (TINY['image_size'], ) * 2
    assert hu.min() >= -1024 and hu.max() <= 3071
    assert ((hu > -1100) & (hu < -900)).mean() > .2  # air around the body
    assert ((hu > -140) & (hu < -60)).mean() > .02  # fat
    assert ((hu > 0) & (hu < 120)).mean() > .05  # soft tissue
    assert hu.max() > 400  # bone
    # noise of ~10-20 HU inside the body: high-pass std in a fat/muscle patch
    all_hu = np.stack([demo_hu(tiny, r['File_name']) for r in rows[:10]])
    diffs = np.diff(all_hu, axis=2)
    soft = (all_hu[..., 1:] > -150) & (all_hu[..., 1:] < 150) & (
        np.abs(diffs) < 200)
    noise = np.std(diffs[soft]) / math.sqrt(2)
    assert 5 < noise < 40
    # the phantom has lungs (-850 HU) somewhere in the dataset
    lungs = [((h > -900) & (h < -800)).mean() for h in all_hu]
    assert max(lungs) > .01


def test_neighbouring_slices_change_smoothly(tiny):
    r = demo_rows(tiny)[0]
    folder = tiny / 'Images_png' / r['File_name'][:12]
    key = int(r['Key_slice_index'])
    key_hu = demo_hu(tiny, r['File_name'])
    nb = cv2.imread(str(folder / f'{key + 1:03d}.png'),
                    cv2.IMREAD_UNCHANGED).astype(np.float32) - 32768
    far = demo_hu(tiny, demo_rows(tiny)[-1]['File_name'])  # another patient
    body = key_hu > -500
    near_diff = np.abs(nb - key_hu)[body].mean()
    far_diff = np.abs(far - key_hu)[body].mean()
    assert near_diff < far_diff


def test_lesions_inside_image_and_visible(tiny):
    meta = demo_meta(tiny)
    n = TINY['image_size']
    contrasts = []
    for key in meta['key_slices']:
        hu = demo_hu(tiny, key['file_name'])
        yy, xx = np.mgrid[:n, :n]
        for les in key['lesions']:
            cx, cy = les['center_px']
            a, b, c = (v / key['spacing'] for v in les['semi_axes_mm'])
            dz = (les['center_mm'][2] - key['z_mm']) / key['spacing']
            assert abs(dz) < c  # the key slice cuts the lesion
            s = math.sqrt(1 - (dz / c)**2)
            ca, sa = math.cos(les['angle']), math.sin(les['angle'])
            ex = s * math.hypot(a * ca, b * sa)
            ey = s * math.hypot(a * sa, b * ca)
            assert 0 <= cx - ex and cx + ex <= n - 1
            assert 0 <= cy - ey and cy + ey <= n - 1
            b_px = b * s
            core = (xx - cx)**2 + (yy - cy)**2 <= max(b_px * .5, .8)**2
            if core.sum() >= 3:
                contrasts.append(
                    abs(np.median(hu[core]) - les['host_hu']) /
                    max(abs(les['hu'] - les['host_hu']), 1.))
            assert abs(les['hu'] - les['host_hu']) >= 40
    # the lesion core shows most of its nominal contrast
    assert np.median(contrasts) > .5


def test_split_by_patient(tiny):
    splits = {}
    for r in demo_rows(tiny):
        splits.setdefault(r['Patient_index'], set()).add(r['Train_Val_Test'])
    assert all(len(s) == 1 for s in splits.values())
    assert set().union(*splits.values()) == {'1', '2', '3'}


def test_some_lesions_are_unannotated(tiny):
    meta = demo_meta(tiny)
    rows = demo_rows(tiny)
    n_rows = {}
    for r in rows:
        n_rows[r['File_name']] = n_rows.get(r['File_name'], 0) + 1
    n_unannotated = n_visible = 0
    for key in meta['key_slices']:
        annotated = [les for les in key['lesions'] if les['annotated']]
        assert n_rows[key['file_name']] == len(annotated)
        rows_here = [r for r in rows if r['File_name'] == key['file_name']]
        for les in key['lesions']:
            # each annotated lesion has the row whose RECIST centre it is
            cx, cy = les['center_px'][0] + 1, les['center_px'][1] + 1
            centres = [
                np.array(_floats(r['Measurement_coordinates'])).reshape(
                    4, 2).mean(axis=0) for r in rows_here
            ]
            has_row = any(
                np.hypot(m[0] - cx, m[1] - cy) < 1. for m, r in zip(
                    centres, rows_here) if r['Possibly_noisy'] == '0')
            if les['annotated']:
                noisy = any(r['Possibly_noisy'] == '1' for r in rows_here)
                assert has_row or noisy
                continue
            assert not has_row
            n_unannotated += 1
            # ... but the unannotated one is in the image all the same
            b_px = les['semi_axes_mm'][1] / key['spacing']
            if b_px < 2.:
                continue  # too small to measure against noise and blur
            hu = demo_hu(tiny, key['file_name'])
            r0 = int(round(les['center_px'][1]))
            c0 = int(round(les['center_px'][0]))
            value = np.median(hu[r0 - 1:r0 + 2, c0 - 1:c0 + 2])
            moved = (value - les['host_hu']) / (les['hu'] - les['host_hu'])
            assert moved > .4
            n_visible += 1
    assert n_unannotated > 0 and n_visible > 0
    assert meta['summary']['splits']['train']['unannotated_lesions'] + \
        meta['summary']['splits']['val']['unannotated_lesions'] + \
        meta['summary']['splits']['test']['unannotated_lesions'] == \
        n_unannotated


def test_refuses_to_overwrite(tiny, tmp_path):
    # a user's folder is never touched, even with overwrite=True
    user = tmp_path / 'user'
    user.mkdir()
    (user / 'precious.txt').write_text('keep me')
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match='user'):
            generate_demo_deeplesion(user, overwrite=overwrite, **TINY)
    assert (user / 'precious.txt').read_text() == 'keep me'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['user']
    # a file in the way
    target = tmp_path / 'file'
    target.write_text('x')
    with pytest.raises(FileExistsError, match='not a folder'):
        generate_demo_deeplesion(target, **TINY)
    # an existing empty folder is fine
    empty = tmp_path / 'empty'
    empty.mkdir()
    small = dict(TINY, num_train=1, num_val=1, num_test=0)
    generate_demo_deeplesion(empty, **small)
    assert (empty / 'DL_info.csv').is_file()
    # a generated dataset: refused without overwrite, replaced with it
    with pytest.raises(FileExistsError, match='overwrite'):
        generate_demo_deeplesion(empty, seed=3, **small)
    before = dataset_digest(empty)
    generate_demo_deeplesion(empty, seed=3, overwrite=True, **small)
    assert dataset_digest(empty) != before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'empty', 'file', 'user'
    ]


def test_failure_leaves_nothing(tmp_path, monkeypatch):
    gen = DeepLesionDemoGenerator(num_train=1, num_val=0, num_test=0,
                                  image_size=96, context_mm=2.)

    def boom(*args, **kwargs):
        raise RuntimeError('disk full')

    monkeypatch.setattr(gen, 'write_csv', boom)
    with pytest.raises(RuntimeError, match='disk full'):
        gen.generate(tmp_path / 'out')
    assert list(tmp_path.iterdir()) == []


def test_config_validation():
    with pytest.raises(ValueError, match='image_size'):
        DeepLesionDemoGenerator(image_size=8)
    with pytest.raises(ValueError, match='lesions_per_key'):
        DeepLesionDemoGenerator(lesions_per_key=(0, 2))
    with pytest.raises(ValueError, match='no key slice'):
        DeepLesionDemoGenerator(num_train=0, num_val=0, num_test=0)
    with pytest.raises(TypeError, match='Unknown'):
        DeepLesionDemoGenerator(num_trian=3)
    assert DeepLesionDemoGenerator(DemoDataConfig(seed=4)).config.seed == 4


def test_default_plan_statistics():
    """The default demo set: sizes, intervals and counts the detector needs."""
    gen = DeepLesionDemoGenerator()
    summary = gen.summary()
    splits = summary['splits']
    assert [splits[s]['key_slices'] for s in ('train', 'val', 'test')] == [
        150, 40, 40
    ]
    assert set(summary['key_slices_by_slice_interval_mm']) == {'1', '2', '5'}
    pct = summary['long_diameter_mm_percentiles']
    assert 3. <= pct['0'] and pct['100'] <= 61.
    assert 10. <= pct['50'] <= 30.
    assert pct['10'] >= 5.  # not too many tiny lesions
    assert set(summary['lesions_by_type']) == {str(t) for t in range(1, 9)}
    total = sum(s['lesions'] for s in splits.values())
    assert 230 <= total <= 3 * 230
    assert gen.num_images() < 3000


def test_dl_info_parser_reads_generated_csv(tiny):
    dl_info = pytest.importorskip('mmlesion.datasets.deeplesion.dl_info')
    records = dl_info.parse_dl_info(tiny / 'DL_info.csv')
    rows = demo_rows(tiny)
    assert len(records) == len(rows)
    for rec, row in zip(records, rows):
        box = _floats(row['Bounding_boxes'])
        assert rec.bbox == pytest.approx([v - 1 for v in box])
        assert rec.file_name == row['File_name']
        assert rec.image_size == (TINY['image_size'], ) * 2
        assert rec.split == int(row['Train_Val_Test'])
