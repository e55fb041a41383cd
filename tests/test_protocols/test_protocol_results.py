# Copyright (c) mmlesion contributors. All rights reserved.
"""The typed results of :mod:`mmlesion.protocols` write the files the dict
results wrote, byte for byte (the tools' end-to-end runs are in
``tests/test_tools/test_analysis_tools/test_eval_lens_3d.py`` and
``tests/test_tools/test_luna16_cv.py``)."""
import json

from mmlesion.methods.lens.eval_3d import Lens3DEvaluation
from mmlesion.protocols import FoldRecord
from mmlesion.methods.lens.eval_3d import PROTOCOL


def test_fold_record_is_fold_done_json(tmp_path):
    record = FoldRecord(fold=3, checkpoint='w/fold3/epoch_2.pth',
                        num_scans=4, num_candidates=17, train_s=12.5,
                        test_s=1.0)
    old = dict(fold=3, checkpoint='w/fold3/epoch_2.pth', num_scans=4,
               num_candidates=17, train_s=12.5, test_s=1.0)
    assert json.dumps(record.to_dict(), indent=2) == json.dumps(old,
                                                               indent=2)
    path = tmp_path / 'fold_done.json'
    path.write_text(json.dumps(old, indent=2))
    again = FoldRecord.from_file(str(path))
    assert again.skipped and again.to_dict() == dict(old, skipped=True)


def test_lens_3d_evaluation_is_metrics_json():
    sens = {f'sens@{r:g}': r / 8 for r in (.125, .25, .5, 1, 2, 4, 8)}
    result = Lens3DEvaluation(
        sensitivity=sens, average=.4, sub_volumes=2, series=1, lesions=3,
        findings=9, fpr=False, experts=[0], max_offset=None,
        stacking_iou_thr=.5, splits=['test'], subset=None,
        files=dict(config='/c.py', checkpoint=None))
    old = dict(protocol=PROTOCOL, **sens, average=.4, sub_volumes=2,
               series=1, lesions=3, findings=9, fpr=False, experts=[0],
               max_offset=None, stacking_iou_thr=.5, splits=['test'],
               subset=None)
    old['files'] = dict(config='/c.py', checkpoint=None)
    assert json.dumps(result.to_dict(), indent=1) == json.dumps(old,
                                                               indent=1)
