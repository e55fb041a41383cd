# Copyright (c) mmlesion contributors. All rights reserved.
"""The study options of the synthetic DeepLesion set
(``projects/study_demo/synthetic/deeplesion.py``): single-type sets,
follow-up studies, several studies per patient; with the default study
settings the main job's generator's bytes."""
import numpy as np
import pytest

from mmlesion.apps.demo import DeepLesionDemoGenerator
from mmlesion.datasets.deeplesion.dl_info import DL_INFO_COLUMNS
from projects.study_demo.synthetic.deeplesion import StudyDemoGenerator
from tests.helpers.demo_sets import (dataset_digest, demo_hu, demo_meta,
                                     demo_rows)


def test_default_study_settings_are_the_main_generator(tmp_path):
    """Without a study option the study generator writes the main job's
    generator's DL_info.csv and images (demo_meta.json adds the study
    fields)."""
    tiny = dict(num_train=3, num_val=1, num_test=1, image_size=96,
                context_mm=2.)
    DeepLesionDemoGenerator(seed=5, **tiny).generate(tmp_path / 'main')
    StudyDemoGenerator(seed=5, **tiny).generate(tmp_path / 'study')
    for name in ('main', 'study'):
        (tmp_path / name / 'demo_meta.json').unlink()
    assert dataset_digest(tmp_path / 'main') == \
        dataset_digest(tmp_path / 'study')


def test_single_type_set():
    """``lesion_types=(5, )``: lung nodules only, on chest series, every
    lesion annotated with ``unannotated_prob=0`` (the LENS demo's
    single-type set); the default plan is unchanged by the option."""
    gen = StudyDemoGenerator(num_train=12, num_val=0, num_test=0,
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
    b = StudyDemoGenerator(num_train=4, num_val=0, num_test=0,
                           lesion_types=None)
    assert a.csv_rows() == b.csv_rows()
    for bad in ((), (0, ), (9, ), (5.5, )):
        with pytest.raises(ValueError, match='lesion_types'):
            StudyDemoGenerator(lesion_types=bad)


# Longitudinal follow-ups: every second study is one, most annotated lesions
# lose their row there.
FOLLOWUP = dict(
    num_train=16, num_val=4, num_test=4, image_size=128, context_mm=4.,
    unannotated_prob=.5, followup_prob=1., followup_missing_prob=.6)


@pytest.fixture(scope='module')
def followup(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo_fu') / 'demo_deeplesion'
    gen = StudyDemoGenerator(seed=0, **FOLLOWUP)
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
    images, drawn from the same plan) are those of the main job's
    generator, whatever followup_missing_prob says."""
    small = dict(num_train=12, num_val=3, num_test=3, image_size=128,
                 unannotated_prob=.5)
    plain = DeepLesionDemoGenerator(seed=2, **small)
    explicit = StudyDemoGenerator(seed=2, followup_prob=0.,
                                  followup_missing_prob=.9, **small)
    assert explicit.csv_rows() == plain.csv_rows()
    assert [s.dir_name for s in explicit.plan()] == \
        [s.dir_name for s in plain.plan()]
    assert explicit.summary()['followup_studies'] == 0
    with_fu = StudyDemoGenerator(seed=2, followup_prob=1., **small)
    assert with_fu.summary()['followup_studies'] > 0


def test_followup_rate():
    gen = StudyDemoGenerator(num_train=150, num_val=0, num_test=0,
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

    shifted = offsets(StudyDemoGenerator(
        seed=3, followup_slice_shift=True, **small))
    assert len(shifted) >= 3 and all(.2 - 1e-3 <= f <= .5 for f in shifted)
    aligned = offsets(StudyDemoGenerator(seed=3, **small))
    assert aligned and all(f < 1e-3 for f in aligned)


def test_followup_shows_the_same_lesions(followup):
    root, gen = followup
    meta = demo_meta(root)
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
        hu = demo_hu(root, key['file_name'])
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
    meta = demo_meta(root)
    rows = demo_rows(root)
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
        StudyDemoGenerator(followup_prob=1.5)
    with pytest.raises(ValueError, match='followup_missing_prob'):
        StudyDemoGenerator(followup_missing_prob=-.1)
    with pytest.raises(ValueError, match='multi_study_prob'):
        StudyDemoGenerator(multi_study_prob=1.2)
    for bad in (1, 7, 2.5):
        with pytest.raises(ValueError, match='num_studies'):
            StudyDemoGenerator(num_studies=bad)


def test_study_count_defaults_unchanged():
    """The explicit defaults of ``multi_study_prob`` / ``num_studies`` plan
    exactly the patients of a set made before the options existed (the
    draw ``r >= 1 - 0.35`` is the former ``not r < 0.65``)."""
    small = dict(num_train=20, num_val=3, num_test=3, image_size=128,
                 followup_prob=1.)
    plain = StudyDemoGenerator(seed=4, **small)
    explicit = StudyDemoGenerator(seed=4, multi_study_prob=.35,
                                  num_studies=2, **small)
    assert explicit.csv_rows() == plain.csv_rows()
    assert max(s.study for s in plain.plan()) == 2


def test_several_followups_of_the_first_study():
    """With three studies per patient every later study is a follow-up of
    the first, shows its lesions (same ``lesion_num``), and the lesions it
    leaves unannotated are counted as left out."""
    gen = StudyDemoGenerator(num_train=60, num_val=0, num_test=0,
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
    two = StudyDemoGenerator(num_train=60, num_val=0, num_test=0,
                             image_size=128, followup_prob=1.,
                             followup_missing_prob=.9)
    assert summary['followup_left_out_lesions'] > \
        two.summary()['followup_left_out_lesions']
