# Copyright (c) mmlesion contributors. All rights reserved.
"""Each LENS mining strategy (Sec. V) on hand-made tracklets."""
import numpy as np
import pytest

from mmlesion.methods.lens.mining import (Matcher, MiningSettings,
                                          SeriesMining, SliceProposals,
                                          box_sites, build_tracklets,
                                          match_intra_patient, mine_series,
                                          mine_uncertain,
                                          propagate_annotations)


def _p(z, boxes, scores, emb=None):
    return SliceProposals(z, np.array(boxes, np.float32).reshape(-1, 4),
                          np.array(scores, np.float32),
                          None if emb is None else np.array(emb, np.float32))


def _track(z0, z1, box, shift=1., score=0.9, emb=None):
    """One lesion's proposals on slices z0..z1, drifting ``shift`` px."""
    out = []
    for k, z in enumerate(range(z0, z1 + 1)):
        b = np.array(box, np.float32) + k * shift
        out.append(_p(z, [b], [score], None if emb is None else [emb]))
    return out


def _merge(*tracks):
    by_z = {}
    for t in tracks:
        for p in t:
            cur = by_z.setdefault(p.z, _p(p.z, np.zeros((0, 4)), []))
            cur.boxes = np.concatenate([cur.boxes, p.boxes])
            cur.scores = np.concatenate([cur.scores, p.scores])
            if p.embeddings is not None:
                cur.embeddings = p.embeddings if cur.embeddings is None \
                    else np.concatenate([cur.embeddings, p.embeddings])
    return [by_z[z] for z in sorted(by_z)]


def test_tracklets_link_consecutive_overlapping_boxes():
    a = _track(3, 7, [10, 10, 30, 30])
    b = _track(5, 6, [60, 60, 80, 80], score=0.4)
    jump = [_p(9, [[10, 10, 30, 30]], [0.8])]  # slice 8 missing: new one
    tracks = build_tracklets(_merge(a, b) + jump, iou_thr=0.5)
    spans = sorted(tuple(sorted(t.boxes)) for t in tracks)
    assert spans == [(3, 4, 5, 6, 7), (5, 6), (9, )]
    # IoU below theta between neighbours breaks a tracklet
    far = _track(0, 2, [0, 0, 10, 10], shift=6.)
    assert len(build_tracklets(far, iou_thr=0.5)) == 3


def test_propagation_uses_key_slice_iou():
    lesion = _track(3, 7, [10, 10, 30, 30])
    other = _track(3, 5, [60, 60, 80, 80])
    tracks = build_tracklets(_merge(lesion, other))
    # annotation on key slice 5 matches the first tracklet (IoU > 0.5)
    ann = {5: np.array([[12., 12., 31., 31.]])}
    mined = propagate_annotations(tracks, ann, 0.5)
    assert sorted(mined) == [3, 4, 6, 7]
    assert all(len(v) == 1 for v in mined.values())
    np.testing.assert_allclose(mined[3][0], [10, 10, 30, 30])
    assert sorted(t.matched_by or '' for t in tracks) == ['', 'propagation']
    # a weak overlap (IoU <= 0.5) propagates nothing
    tracks = build_tracklets(_merge(lesion))
    assert propagate_annotations(tracks, {5: np.array([[24., 24., 44.,
                                                         44.]])}) == {}


def test_intra_patient_matching_by_embedding_distance():
    e1 = np.array([1., 0., 0.], np.float32)
    near = np.array([0.995, 0.0999, 0.], np.float32)  # distance ~0.1
    far = np.array([0.8, 0.6, 0.], np.float32)  # distance ~0.63
    s1 = SeriesMining('s1', 'p1', {4: np.array([[10., 10., 30., 30.]])},
                      annotation_embeddings=e1[None])
    s2 = SeriesMining('s2', 'p1', {})
    s3 = SeriesMining('s3', 'p2', {})
    s2.tracklets = build_tracklets(
        _merge(_track(2, 4, [40, 40, 60, 60], emb=near),
               _track(2, 3, [5, 5, 15, 15], emb=far)))
    s3.tracklets = build_tracklets(_track(2, 4, [40, 40, 60, 60],
                                          emb=near))
    out = match_intra_patient([s1, s2, s3], dist_thr=0.15)
    assert set(out) == {'s2'}  # s3 is another patient
    assert sorted(out['s2']) == [2, 3, 4]
    np.testing.assert_allclose(out['s2'][2][0], [40, 40, 60, 60])
    # with a looser threshold the far tracklet matches as well
    for t in s2.tracklets:
        t.matched_by = None
    out = match_intra_patient([s1, s2], dist_thr=0.7)
    assert sum(len(v) for v in out['s2'].values()) == 5


def test_intra_patient_matching_minimum_tracklet_score():
    """A weak tracklet (best box below ``min_score``) is not matched,
    however close its embedding; its distance is still recorded; a
    tracklet at exactly the minimum is matched."""
    e1 = np.array([1., 0., 0.], np.float32)
    near = np.array([0.995, 0.0999, 0.], np.float32)
    s1 = SeriesMining('s1', 'p1', {4: np.array([[10., 10., 30., 30.]])},
                      annotation_embeddings=e1[None])
    s2 = SeriesMining('s2', 'p1', {})
    s2.tracklets = build_tracklets(
        _merge(_track(2, 4, [40, 40, 60, 60], score=0.3, emb=near),
               _track(6, 7, [5, 5, 15, 15], score=0.5, emb=near)))
    out = match_intra_patient([s1, s2], dist_thr=0.15, min_score=0.5)
    assert sorted(out['s2']) == [6, 7]
    weak = [t for t in s2.tracklets if 2 in t.boxes][0]
    assert weak.matched_by is None
    assert weak.match_distance == pytest.approx(0.1, abs=1e-3)
    # through mine_series (default 0: both matched)
    s2.tracklets, s2.proposals = [], _merge(
        _track(2, 4, [40, 40, 60, 60], score=0.3, emb=near))
    s2.annotation_embeddings = None
    assert mine_series([s1, s2], MiningSettings(
        strategies=('intra_patient', ),
        match_score_thr=0.5)).intra_patient == 0
    assert mine_series([s1, s2], MiningSettings(
        strategies=('intra_patient', ))).intra_patient == 3


def test_intra_patient_matching_excludes_same_series_pairs():
    """A tracklet of the annotated series itself is never matched to that
    series' annotations (the paper matches across studies / series), only
    to another series' ones."""
    e1 = np.array([1., 0., 0.], np.float32)
    near = np.array([0.995, 0.0999, 0.], np.float32)
    s1 = SeriesMining('s1', 'p1', {4: np.array([[10., 10., 30., 30.]])},
                      annotation_embeddings=e1[None])
    s1.tracklets = build_tracklets(_track(2, 4, [40, 40, 60, 60], emb=near))
    assert match_intra_patient([s1], dist_thr=0.15) == {}
    assert s1.tracklets[0].matched_by is None
    s2 = SeriesMining('s2', 'p1', {6: np.array([[5., 5., 9., 9.]])},
                      annotation_embeddings=near[None])
    out = match_intra_patient([s1, s2], dist_thr=0.15)
    assert set(out) == {'s1'} and sorted(out['s1']) == [2, 3, 4]


def test_cross_dataset_mining_gives_uncertain_lesions():
    known = {5: np.array([[10., 10., 30., 30.]])}
    props = [
        _p(5, [[12, 12, 28, 28],  # overlaps an annotation: no
               [60, 60, 80, 80],  # free and confident: uncertain
               [100, 100, 110, 110]],  # free but score 0.4: no
           [0.9, 0.7, 0.4]),
        _p(6, [[12, 12, 28, 28]], [0.9]),  # slice 6 has no annotation
    ]
    out = mine_uncertain(props, known, score_thr=0.5)
    assert sorted(out) == [5, 6]
    assert len(out[5]) == 1 and out[5][0][1] == pytest.approx(0.7)
    np.testing.assert_allclose(out[5][0][0], [60, 60, 80, 80])


def test_mine_series_runs_the_three_strategies_in_order():
    emb = np.array([0., 1., 0.], np.float32)
    s = SeriesMining(
        'a', 'p', {5: np.array([[10., 10., 30., 30.]])},
        proposals=_merge(_track(4, 6, [10, 10, 30, 30], emb=emb)),
        single_type_proposals=[
            _p(4, [[10, 10, 30, 30], [70, 70, 90, 90]], [0.9, 0.9])
        ],
        annotation_embeddings=emb[None])
    counts = mine_series([s])
    assert counts.propagation == 2 and counts.intra_patient == 0
    # one series: no other series of the patient to measure against
    dist = counts.embedding_distances
    assert dist['same_lesion']['n'] == 0 and dist['others']['n'] == 0
    assert sorted(s.mined) == [4, 6]
    # the box on slice 4 is now a mined annotation: not uncertain
    assert len(s.uncertain[4]) == 1
    np.testing.assert_allclose(s.uncertain[4][0][0], [70, 70, 90, 90])
    with pytest.raises(ValueError, match='unknown'):
        mine_series([s], MiningSettings(strategies=('magic', )))


def test_box_sites_are_body_relative_location_and_log_size():
    sites = box_sites(np.array([[20., 40., 40., 50.]]), (10., 30., 110., 80.),
                      0.4, 0.5)
    np.testing.assert_allclose(sites, [[0.2, 0.3, 0.4, np.log(10.)]])


def test_matchers_compare_appearance_location_or_both():
    """A tracklet that looks like the annotated lesion of the other study
    but sits elsewhere in the body matches by appearance only; one at the
    lesion's place that looks different matches by location only; the
    combined match takes the one close in both."""
    e1 = np.array([1., 0.], np.float32)
    other = np.array([0., 1.], np.float32)
    at, away = [0.3, 0.5, 0.6, np.log(20.)], [0.8, 0.2, 0.3, np.log(20.)]
    s1 = SeriesMining('s1', 'p1', {4: np.array([[10., 10., 30., 30.]])},
                      annotation_embeddings=e1[None],
                      annotation_sites=np.array([at]))
    s2 = SeriesMining('s2', 'p1', {})
    props = _p(2, [[40, 40, 60, 60], [100, 100, 120, 120],
                   [150, 150, 170, 170]], [.9, .9, .9], [e1, other, e1])
    props.sites = np.array([away, at, at])
    found = {}
    for kind, thr in (('appearance', 0.1), ('location', 0.1),
                      ('combined', 0.2)):
        s2.tracklets = build_tracklets([props])
        out = match_intra_patient([s1, s2], thr, matcher=Matcher(kind))
        found[kind] = sorted(int(b[0]) for b in out['s2'][2])
    assert found == dict(appearance=[40, 150], location=[100, 150],
                         combined=[150])
    with pytest.raises(ValueError, match='unknown matcher'):
        Matcher('type')


def test_combined_matcher_scales_by_the_annotation_pairs():
    """The combined distance divides each part by its median over one
    patient's annotations in different series."""
    a = SeriesMining('a', 'p', {1: np.zeros((2, 4))},
                     annotation_embeddings=np.array([[1., 0.], [0., 1.]]),
                     annotation_sites=np.array([[.1, .1, .1, 1.],
                                                [.5, .1, .1, 2.]]))
    b = SeriesMining('b', 'p', {1: np.zeros((1, 4))},
                     annotation_embeddings=np.array([[1., 0.]]),
                     annotation_sites=np.array([[.1, .4, .1, 1.5]]))
    m = Matcher('combined').fit_scale([a, b])
    # pairs (a0, b), (a1, b): appearance 0, sqrt 2; location .3, .5;
    # size .5, .5 (each counted from both sides)
    assert m.scale == pytest.approx((np.sqrt(2) / 2, 0.4, 0.5))
    assert Matcher('appearance').fit_scale([a, b]).scale == (1., 1., 1.)


def test_slice_z_from_the_nearest_key_slice_and_the_sets_slope():
    from mmlesion.methods.lens.mining.proposals import _fill_slice_z
    s = SeriesMining('s', 'p', {})
    s.proposals = [_p(5, [[0, 0, 4, 4]], [.9]), _p(9, [[0, 0, 4, 4]], [.9])]
    for p in s.proposals:
        p.sites = box_sites(p.boxes, (0, 0, 10, 10), np.nan, 1.)
    lone = SeriesMining('lone', 'q', {})
    lone.proposals = [_p(1, [[0, 0, 4, 4]], [.9])]
    lone.proposals[0].sites = box_sites(lone.proposals[0].boxes,
                                        (0, 0, 10, 10), np.nan, 1.)
    # two key slices 4 slices of 2 mm apart, z 0.5 -> 0.508: 0.001 per mm
    _fill_slice_z([s, lone], {'s': [(4, .5, 2.), (8, .508, 2.)]})
    assert s.proposals[0].sites[0, 2] == pytest.approx(.502)
    assert s.proposals[1].sites[0, 2] == pytest.approx(.51)
    assert lone.proposals[0].sites is None  # no key slice with a location


def test_body_box_from_the_crop_or_the_air():
    import torch
    from mmdet.structures import DetDataSample

    from mmlesion.methods.lens.mining.proposals import body_box
    img = torch.full((3, 20, 30), -1.)
    img[:, 4:10, 6:21] = 0.3
    sample = DetDataSample(metainfo=dict(scale_factor=(2., 2.)))
    packed = dict(inputs=img, data_samples=sample)
    np.testing.assert_allclose(body_box(packed), [3., 2., 10.5, 5.])
    sample.set_metainfo(dict(crop_offset=(7, 5)))
    np.testing.assert_allclose(body_box(packed), [7., 5., 22., 15.])
