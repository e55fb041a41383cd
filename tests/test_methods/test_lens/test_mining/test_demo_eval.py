# Copyright (c) mmlesion contributors. All rights reserved.
"""evaluate_mining on a demo set with follow-up studies: the lesions
annotated in a patient's first study and left out of its follow-up."""
import json
import math

import numpy as np
import pytest

from mmlesion.apps.demo import META_FILE
from mmlesion.methods.lens.mining import SeriesMining, Tracklet
from mmlesion.methods.lens.mining.demo_eval import (evaluate_mining,
                                                    followup_missing_lesions,
                                                    load_demo_lesions)
from projects.lens.matcher_comparison import score_matched_lesions
from projects.study_demo.synthetic.deeplesion import generate_study_deeplesion


@pytest.fixture(scope='module')
def followup_meta(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp('demo_fu_eval') / 'demo'
    generate_study_deeplesion(
        root, seed=1, num_train=16, num_val=0, num_test=0, image_size=96,
        context_mm=2., unannotated_prob=.5, followup_prob=1.,
        followup_missing_prob=.6)
    return str(root / META_FILE)


def _box(les: dict) -> list:
    cx, cy = les['center_px']
    return [cx - 1, cy - 1, cx + 1, cy + 1]


def test_followup_missing_recall(followup_meta):
    with open(followup_meta) as f:
        meta = json.load(f)
    base_annotated = {les['lesion_id'] for key in meta['key_slices']
                      if not key['followup'] for les in key['lesions']
                      if les['annotated']}
    left_out, other = [], []
    for key in meta['key_slices']:
        series, index = key['file_name'][:-4].rsplit('_', 1)
        for les in key['lesions']:
            if les['annotated']:
                continue
            entry = dict(series_dir=series, slice=int(index),
                         mined=[_box(les)], uncertain=[])
            if key['followup'] and les['lesion_id'] in base_annotated:
                left_out.append(entry)
            else:
                other.append(entry)
    assert left_out and other
    assert len(left_out) == meta['summary']['followup_left_out_lesions']

    res = evaluate_mining(left_out + other, followup_meta)
    fu = res['followup_missing']
    assert fu['lesions'] == len(left_out)
    assert fu['mined_recall'] == fu['any_recall'] == 1.
    assert math.isnan(res['uncertain']['precision'])
    assert fu['uncertain_recall'] == 0.
    # the existing keys are still there and count the follow-up ones too
    assert res['unannotated_lesions'] == len(left_out) + len(other)
    assert res['mined']['precision'] == 1.
    assert res['any_recall_unannotated'] == 1.

    # boxes on the other unannotated lesions recover none of them
    fu = evaluate_mining(other, followup_meta)['followup_missing']
    assert fu['any_recall'] == 0. if fu['lesions'] else math.isnan(
        fu['any_recall'])
    # half of them, as uncertain boxes
    half = [dict(e, mined=[], uncertain=e['mined']) for e in left_out[::2]]
    res = evaluate_mining(left_out[1::2] + half, followup_meta)
    assert res['followup_missing']['uncertain_recall'] == round(
        len(half) / len(left_out), 4)
    assert res['followup_missing']['any_recall'] == 1.


def test_sets_without_followups(followup_meta, tmp_path):
    """A meta file written before follow-ups existed (no ``lesion_id``, no
    ``followup``): nothing to recover, the other numbers unchanged."""
    with open(followup_meta) as f:
        meta = json.load(f)
    for key in meta['key_slices']:
        key.pop('followup')
        key.pop('followup_of')
        for les in key['lesions']:
            les.pop('lesion_id')
    old = tmp_path / 'old_meta.json'
    old.write_text(json.dumps(meta))
    truth = load_demo_lesions(str(old))
    assert not any(info['followup'] for info in truth.values())
    assert followup_missing_lesions(truth, sorted(truth)) == set()
    key = meta['key_slices'][0]
    series, index = key['file_name'][:-4].rsplit('_', 1)
    slices = [dict(series_dir=series, slice=int(index),
                   mined=[_box(les) for les in key['lesions']])]
    res = evaluate_mining(slices, str(old))
    assert res['followup_missing']['lesions'] == 0
    assert res['mined'] == evaluate_mining(slices, followup_meta)['mined']


def test_per_source_and_matched_lesion_scores(followup_meta):
    """Each source is scored alone (a wrong box costs only its source's
    precision), and the matched tracklets are scored as the paper's check
    of new lesion instances: true when the best box hits a lesion; the
    follow-up lesions without a row that any box hits are found."""
    truth = load_demo_lesions(followup_meta)
    missing = sorted(followup_missing_lesions(truth, sorted(truth)))
    name, i = missing[0]
    info = truth[name]
    box = _box(info['lesions'][i])
    z = info['key_index']
    entries = [dict(series_dir=name, slice=z,
                    mined=[box, [0, 0, 2, 2]],
                    mined_sources=['intra_patient', 'propagation'],
                    uncertain=[box])]
    by = evaluate_mining(entries, followup_meta)['by_source']
    assert by['intra_patient']['precision'] == 1.
    assert by['propagation']['precision'] == 0.
    assert by['cross_dataset']['boxes'] == 1
    assert by['intra_patient']['recall_followup_missing'] > 0.

    hit = Tracklet({z: (np.array(box, np.float32), .9)}, .9,
                   matched_by='intra_patient')
    miss = Tracklet({z: (np.array([0., 0., 2., 2.], np.float32), .8)}, .8,
                    matched_by='intra_patient')
    other = Tracklet({z: (np.array(box, np.float32), .9)}, .9,
                     matched_by='propagation')
    s = SeriesMining(name, name[:6], {}, tracklets=[hit, miss, other])
    got = score_matched_lesions([s], truth)
    assert (got.matched, got.true, got.found) == (2, 1, 1)
    assert got.precision == .5
    assert got.followup_missing == sum(n == name for n, _ in missing)
    assert got.f1 == pytest.approx(2 * .5 * got.recall / (.5 + got.recall))
