# 3D-AG with Local Magnification (Table III "Crop 128, DA, Magnify, Joint"):
# DenseUNet3D (Table I), per-level RPN heads with LUNA16 "anchor1"
# ({4, 6}, {8, 12}, {16, 24} mm at strides 4, 8, 16), adaptive focal loss
# (Eq. 3), aggregated FPRN with Diameter Alignment and Local Magnification,
# joint training, 128^3 crops at 1 mm, fold 0 of the 10-fold CV (another
# fold k: `tools/train.py CONFIG --fold k`, same for tools/test.py; it
# writes into work_dirs/<config>_fold<k>/. --cfg-options fold=k does not
# reach the datasets).
_base_ = [
    '../_base_/models/aggregated_faster_rcnn_3d.py',
    '../_base_/datasets/luna16_3d_cv.py',
    '../_base_/schedules/schedule_aggregated3d_50e.py',
    '../_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmlesion'], allow_failed_imports=False)
default_scope = 'mmdet'
# The paper's inference threshold: probability 0.269 = sigmoid(-1) (IV-F).
model = dict(test_cfg=dict(score_thr=0.0))
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=3))
