# Copyright (c) mmlesion contributors. All rights reserved.
import csv
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from mmlesion.datasets.deeplesion.dl_info import DL_INFO_COLUMNS
from mmlesion.apps.demo import (BOX_PADDING, META_FILE, SPLIT_CODES,
                                DeepLesionDemoGenerator,
                                DemoDataConfig, dataset_digest,
                                generate_demo_deeplesion)
from mmlesion.testing import shared_data_root

# Tiny but complete: every split, 1/2/5 mm series, 128 px slices.
TINY = dict(
    num_train=6, num_val=3, num_test=3, image_size=128, context_mm=4.,
    unannotated_prob=.5, noisy_prob=.1)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('demo') / 'demo_deeplesion'
    generate_demo_deeplesion(root, seed=0, **TINY)
    return root


def _rows(root: Path):
    with open(root / 'DL_info.csv', newline='') as f:
        return list(csv.DictReader(f))


def _floats(text: str):
    return [float(v) for v in text.split(', ')]


def _hu(root: Path, file_name: str) -> np.ndarray:
    series, index = file_name[:12], file_name[13:]
    raw = cv2.imread(str(root / 'Images_png' / series / index),
                     cv2.IMREAD_UNCHANGED)
    assert raw is not None and raw.dtype == np.uint16 and raw.ndim == 2
    return raw.astype(np.float32) - 32768


def _meta(root: Path) -> dict:
    return json.loads((root / META_FILE).read_text())


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
    rows = _rows(tiny)
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
    rows = _rows(tiny)
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
    rows = _rows(tiny)
    file_name = rows[0]['File_name']
    hu = _hu(tiny, file_name)
    assert hu.shape == (TINY['image_size'], ) * 2
    assert hu.min() >= -1024 and hu.max() <= 3071
    assert ((hu > -1100) & (hu < -900)).mean() > .2  # air around the body
    assert ((hu > -140) & (hu < -60)).mean() > .02  # fat
    assert ((hu > 0) & (hu < 120)).mean() > .05  # soft tissue
    assert hu.max() > 400  # bone
    # noise of ~10-20 HU inside the body: high-pass std in a fat/muscle patch
    all_hu = np.stack([_hu(tiny, r['File_name']) for r in rows[:10]])
    diffs = np.diff(all_hu, axis=2)
    soft = (all_hu[..., 1:] > -150) & (all_hu[..., 1:] < 150) & (
        np.abs(diffs) < 200)
    noise = np.std(diffs[soft]) / math.sqrt(2)
    assert 5 < noise < 40
    # the phantom has lungs (-850 HU) somewhere in the dataset
    lungs = [((h > -900) & (h < -800)).mean() for h in all_hu]
    assert max(lungs) > .01


def test_neighbouring_slices_change_smoothly(tiny):
    r = _rows(tiny)[0]
    folder = tiny / 'Images_png' / r['File_name'][:12]
    key = int(r['Key_slice_index'])
    key_hu = _hu(tiny, r['File_name'])
    nb = cv2.imread(str(folder / f'{key + 1:03d}.png'),
                    cv2.IMREAD_UNCHANGED).astype(np.float32) - 32768
    far = _hu(tiny, _rows(tiny)[-1]['File_name'])  # another patient
    body = key_hu > -500
    near_diff = np.abs(nb - key_hu)[body].mean()
    far_diff = np.abs(far - key_hu)[body].mean()
    assert near_diff < far_diff


def test_lesions_inside_image_and_visible(tiny):
    meta = _meta(tiny)
    n = TINY['image_size']
    contrasts = []
    for key in meta['key_slices']:
        hu = _hu(tiny, key['file_name'])
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
    for r in _rows(tiny):
        splits.setdefault(r['Patient_index'], set()).add(r['Train_Val_Test'])
    assert all(len(s) == 1 for s in splits.values())
    assert set().union(*splits.values()) == {'1', '2', '3'}


def test_some_lesions_are_unannotated(tiny):
    meta = _meta(tiny)
    rows = _rows(tiny)
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
            hu = _hu(tiny, key['file_name'])
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


def test_single_type_set():
    """``lesion_types=(5, )``: lung nodules only, on chest series, every
    lesion annotated with ``unannotated_prob=0`` (the LENS demo's
    single-type set); the default plan is unchanged by the option."""
    gen = DeepLesionDemoGenerator(num_train=12, num_val=0, num_test=0,
                                  lesion_types=(5, ), unannotated_prob=0.)
    series = gen.plan()
    lesions = [les for s in series for k in s.keys for les in k.lesions]
    assert len(lesions) >= 12
    assert {les.lesion_type for les in lesions} == {5}
    assert all(les.annotated for les in lesions)
    assert {s.region for s in series} == {'chest'}
    assert sum(len(s.keys) for s in series) == 12
    rows = gen.csv_rows()
    col = DL_INFO_COLUMNS.index('Coarse_lesion_type')
    assert {r[col] for r in rows} == {'5'}
    a = DeepLesionDemoGenerator(num_train=4, num_val=0, num_test=0)
    b = DeepLesionDemoGenerator(num_train=4, num_val=0, num_test=0,
                                lesion_types=None)
    assert a.csv_rows() == b.csv_rows()
    for bad in ((), (0, ), (9, ), (5.5, )):
        with pytest.raises(ValueError, match='lesion_types'):
            DeepLesionDemoGenerator(lesion_types=bad)


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
    rows = _rows(tiny)
    assert len(records) == len(rows)
    for rec, row in zip(records, rows):
        box = _floats(row['Bounding_boxes'])
        assert rec.bbox == pytest.approx([v - 1 for v in box])
        assert rec.file_name == row['File_name']
        assert rec.image_size == (TINY['image_size'], ) * 2
        assert rec.split == int(row['Train_Val_Test'])


# Longitudinal follow-ups: every second study is one, most annotated lesions
# lose their row there.
FOLLOWUP = dict(
    num_train=16, num_val=4, num_test=4, image_size=128, context_mm=4.,
    unannotated_prob=.5, followup_prob=1., followup_missing_prob=.6)


@pytest.fixture(scope='module')
def followup(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo_fu') / 'demo_deeplesion'
    gen = DeepLesionDemoGenerator(seed=0, **FOLLOWUP)
    gen.generate(root)
    return root, gen


def _followup_pairs(meta: dict):
    """(follow-up key slice, key slices of its first study) pairs."""
    by_series = {}
    for key in meta['key_slices']:
        by_series.setdefault(key['file_name'][:12], []).append(key)
    return [(key, by_series[key['followup_of']])
            for key in meta['key_slices'] if key['followup']]


def test_followup_default_unchanged():
    """followup_prob=0 draws no extra random number: the rows (and so the
    images, drawn from the same plan) are those of a set without the
    option, whatever followup_missing_prob says."""
    small = dict(num_train=12, num_val=3, num_test=3, image_size=128,
                 unannotated_prob=.5)
    plain = DeepLesionDemoGenerator(seed=2, **small)
    explicit = DeepLesionDemoGenerator(seed=2, followup_prob=0.,
                                       followup_missing_prob=.9, **small)
    assert explicit.csv_rows() == plain.csv_rows()
    assert [s.dir_name for s in explicit.plan()] == \
        [s.dir_name for s in plain.plan()]
    assert plain.summary()['followup_studies'] == 0
    with_fu = DeepLesionDemoGenerator(seed=2, followup_prob=1., **small)
    assert with_fu.summary()['followup_studies'] > 0


def test_followup_rate():
    gen = DeepLesionDemoGenerator(num_train=150, num_val=0, num_test=0,
                                  image_size=128, followup_prob=.5)
    second = [s for s in gen.plan() if s.study == 2 and any(
        o.patient == s.patient and o.study == 1 for o in gen.plan())]
    rate = np.mean([s.followup_of is not None for s in second])
    assert len(second) >= 20 and .3 <= rate <= .7
    assert all(s.followup_of.patient == s.patient
               and s.followup_of.study == 1 and s.followup_of.split == s.split
               for s in gen.plan() if s.followup_of is not None)


def test_followup_slice_shift():
    """followup_slice_shift: a follow-up's slices lie 0.2-0.8 of its own
    interval off its first study's key-slice positions, with another
    interval; off (default) its first key slice lies at the first's."""
    small = dict(num_train=24, num_val=0, num_test=0, image_size=128,
                 followup_prob=1.)

    def offsets(gen):
        out = []
        for s in gen.plan():
            base = s.followup_of
            if base is None or not s.keys:
                continue
            assert s.interval != base.interval or not gen.config.\
                followup_slice_shift
            frac = ((base.keys[0].z - s.z_start) / s.interval) % 1.
            out.append(min(frac, 1. - frac))
        return out

    shifted = offsets(DeepLesionDemoGenerator(
        seed=3, followup_slice_shift=True, **small))
    assert len(shifted) >= 3 and all(.2 - 1e-3 <= f <= .5 for f in shifted)
    aligned = offsets(DeepLesionDemoGenerator(seed=3, **small))
    assert aligned and all(f < 1e-3 for f in aligned)


def test_followup_shows_the_same_lesions(followup):
    root, gen = followup
    meta = _meta(root)
    pairs = _followup_pairs(meta)
    assert len(pairs) >= 3
    grids = {s.dir_name: s.grid for s in gen.plan()}
    new_grid = n_moved = 0
    for key, base_keys in pairs:
        series = key['file_name'][:12]
        assert series[:6] == key['followup_of'][:6]  # same patient
        assert series[7:9] == '02' and key['followup_of'][7:9] == '01'
        # at the body position of one of the first study's key slices
        base_key = min(base_keys, key=lambda k: abs(k['z_mm'] - key['z_mm']))
        assert abs(base_key['z_mm'] - key['z_mm']) <= \
            key['slice_interval'] / 2 + 1e-6
        base = {les['lesion_id']: les for les in base_key['lesions']}
        grid = grids[series]
        new_grid += grid != grids[key['followup_of']]
        hu = _hu(root, key['file_name'])
        for les in key['lesions']:
            old = base[les['lesion_id']]  # the same lesion ...
            # moved by a few mm, in another contrast phase
            shift = np.subtract(les['center_mm'], old['center_mm'])
            assert 0 < np.abs(shift).max() < 20.
            assert 0 < abs(les['hu'] - old['hu']) < 80.
            assert (les['lesion_type'], les['angle']) == \
                (old['lesion_type'], old['angle'])
            # ... grown or shrunk by one factor
            ratios = np.divide(les['semi_axes_mm'], old['semi_axes_mm'])
            assert np.ptp(ratios) < 1e-2 and .6 - 1e-3 <= ratios[0] <= 1.6
            # an unannotated lesion stays unannotated
            assert old['annotated'] or not les['annotated']
            # its pixel centre is the mm centre through this series' grid
            cx, cy = grid.mm_to_pixel(*les['center_mm'][:2])
            assert les['center_px'] == pytest.approx([cx, cy], abs=1e-3)
            # and the image shows it there
            if les['semi_axes_mm'][1] / key['spacing'] < 2.:
                continue  # too small to measure against noise and blur
            r0, c0 = int(round(cy)), int(round(cx))
            value = np.median(hu[r0 - 1:r0 + 2, c0 - 1:c0 + 2])
            moved = (value - les['host_hu']) / (les['hu'] - les['host_hu'])
            assert moved > .4
            n_moved += 1
    assert n_moved > 0 and new_grid > 0  # a different scan


def test_followup_leaves_annotations_out(followup):
    root, _ = followup
    meta = _meta(root)
    rows = _rows(root)
    left_out = 0
    for key, base_keys in _followup_pairs(meta):
        annotated = [les for les in key['lesions'] if les['annotated']]
        n_rows = sum(r['File_name'] == key['file_name'] for r in rows)
        assert n_rows == len(annotated) >= 1  # a key slice needs a row
        base = {les['lesion_id']: les for k in base_keys
                for les in k['lesions']}
        left_out += sum(base[les['lesion_id']]['annotated']
                        and not les['annotated'] for les in key['lesions'])
    assert left_out > 0
    assert meta['summary']['followup_left_out_lesions'] == left_out
    # ids: unique within a series, shared only by instances of one patient
    ids = {}
    for key in meta['key_slices']:
        for les in key['lesions']:
            ids.setdefault(les['lesion_id'], []).append(key['file_name'])
    assert all(len({f[:12] for f in files}) == len(files)
               and len({f[:6] for f in files}) == 1
               and int(files[0][:6]) == int(lid.split('-')[0])
               for lid, files in ids.items())
    assert sum(len(files) == 2 for files in ids.values()) >= 3


def test_followup_key_slices_do_not_show_each_other(followup):
    _, gen = followup
    for s in gen.plan():
        for key in s.keys:
            for other in s.keys:
                if other is key:
                    continue
                for les in other.lesions:
                    assert les.cross_section(key.z) is None


def test_followup_config_validation():
    with pytest.raises(ValueError, match='followup_prob'):
        DeepLesionDemoGenerator(followup_prob=1.5)
    with pytest.raises(ValueError, match='followup_missing_prob'):
        DeepLesionDemoGenerator(followup_missing_prob=-.1)
    with pytest.raises(ValueError, match='multi_study_prob'):
        DeepLesionDemoGenerator(multi_study_prob=1.2)
    for bad in (1, 7, 2.5):
        with pytest.raises(ValueError, match='num_studies'):
            DeepLesionDemoGenerator(num_studies=bad)


def test_study_count_defaults_unchanged():
    """The explicit defaults of ``multi_study_prob`` / ``num_studies`` plan
    exactly the patients of a set made before the options existed (the
    draw ``r >= 1 - 0.35`` is the former ``not r < 0.65``)."""
    small = dict(num_train=20, num_val=3, num_test=3, image_size=128,
                 followup_prob=1.)
    plain = DeepLesionDemoGenerator(seed=4, **small)
    explicit = DeepLesionDemoGenerator(seed=4, multi_study_prob=.35,
                                       num_studies=2, **small)
    assert explicit.csv_rows() == plain.csv_rows()
    assert max(s.study for s in plain.plan()) == 2


def test_several_followups_of_the_first_study():
    """With three studies per patient every later study is a follow-up of
    the first, shows its lesions (same ``lesion_num``), and the lesions it
    leaves unannotated are counted as left out."""
    gen = DeepLesionDemoGenerator(num_train=60, num_val=0, num_test=0,
                                  image_size=128, followup_prob=1.,
                                  followup_missing_prob=.9,
                                  multi_study_prob=1., num_studies=3)
    plan = gen.plan()
    by_patient = {}
    for s in plan:
        by_patient.setdefault(s.patient, []).append(s)
    # every patient with the budget left gets three studies
    assert sum(len(v) == 3 for v in by_patient.values()) >= .7 * len(
        by_patient)
    third = [s for s in plan if s.study == 3]
    assert third and all(s.followup_of is not None
                         and s.followup_of.study == 1 for s in third)
    for s in third:
        base_nums = {n for key in s.followup_of.keys
                     for n in key.lesion_nums}
        assert all(set(key.lesion_nums) <= base_nums for key in s.keys)
        # a follow-up key slice keeps at least one row
        assert all(any(les.annotated for les in key.lesions)
                   for key in s.keys)
    summary = gen.summary()
    assert summary['followup_studies'] == sum(
        s.followup_of is not None for s in plan)
    two = DeepLesionDemoGenerator(num_train=60, num_val=0, num_test=0,
                                   image_size=128, followup_prob=1.,
                                   followup_missing_prob=.9)
    assert summary['followup_left_out_lesions'] > \
        two.summary()['followup_left_out_lesions']
