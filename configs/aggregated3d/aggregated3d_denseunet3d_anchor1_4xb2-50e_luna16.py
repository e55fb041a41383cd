# 3D-AG with Local Magnification (Table III "Crop 128, DA, Magnify, Joint"):
# DenseUNet3D (Table I), per-level RPN heads with LUNA16 "anchor1"
# ({4, 6}, {8, 12}, {16, 24} mm at strides 4, 8, 16), adaptive focal loss
# (Eq. 3), aggregated FPRN with Diameter Alignment and Local Magnification,
# joint training, 128^3 crops at 1 mm, fold 0 of the 10-fold CV (another
# fold k: `tools/train.py CONFIG --fold k`, same for tools/test.py; it
# writes into work_dirs/<config>_fold<k>/. --cfg-options fold=k does not
# reach the datasets).
# Schedule (Sec. III-E): "We first train the RPN ... After that, we add the
# FPRN branch": this second stage starts from the RPN stage of the same
# fold, the Table II row d model (rpn3d-focal_denseunet3d_anchor1_50e_
# luna16.py), and trains both branches jointly for 50 epochs:
#   python tools/train.py configs/aggregated3d/rpn3d-focal_denseunet3d_\
# anchor1_50e_luna16.py --fold K
#   python tools/train.py THIS_CONFIG --fold K
# (--fold K turns the `fold0` of load_from into `fold<K>`; a stage
# checkpoint elsewhere: --cfg-options load_from=PATH, which may name fold
# K.) The checkpoint may lack the FPRN (`load_from_allowed_missing`); any
# other mismatch is refused.
_base_ = [
    '../_base_/models/aggregated_faster_rcnn_3d.py',
    '../_base_/datasets/luna16_3d_cv.py',
    '../_base_/schedules/schedule_aggregated3d_50e.py',
    '../_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['mmlesion', 'mmlesion.methods.aggregated3d'],
    allow_failed_imports=False)
default_scope = 'mmdet'
# Test score threshold: the paper's 0.269 = sigmoid(-1) (Sec. IV-F) on the
# RPN score, from the model base (on the mean score: aggregated3d-mean-thr_*).
rpn_stage_dir = 'work_dirs/rpn3d-focal_denseunet3d_anchor1_4xb2-50e_luna16_fold0/'
load_from = rpn_stage_dir + 'epoch_50.pth'
load_from_allowed_missing = ['fprn_head.']
default_hooks = dict(
    random_state=dict(type='RandomStateHook'),
    checkpoint=dict(
        type='AtomicCheckpointHook', interval=5, max_keep_ckpts=3))
