# mmdet's runtime (hooks, logger, visualizer, env) with mmlesion's
# HeadlineLogProcessor: the validation / test log line shows the headline
# FROC numbers and COCO mAP; the ~100 breakdown keys of FROCMetric stay in
# the scalars (vis_data/scalars.json), froc_detections.json and the curve.
_base_ = 'mmdet::_base_/default_runtime.py'

log_processor = dict(
    type='HeadlineLogProcessor', window_size=50, by_epoch=True)

# Checkpoints that survive a kill at any moment (written under a temporary
# name and renamed, SHA-256 sidecars, the old best removed only after the
# new one is in place) and an exact resume (random generators and sampler
# seeds in every checkpoint): see README "Faults and recovery".
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', interval=1),
    random_state=dict(type='RandomStateHook'))

# Every runner built from an mmlesion config (mmdet's stock tools/test.py
# included) refuses a checkpoint that does not fit the model. Fine-tuning
# from a detector of other classes: `allow_partial_load = True` in the config
# or `--cfg-options allow_partial_load=True` (training only; see the hook).
custom_hooks = [
    dict(type='CheckpointCheckHook'),
    # the training data's slice interval and pixel spacing in every
    # checkpoint: tools/infer_volume.py resamples scans to them
    dict(type='DataConventionHook')
]

# mmdet's DetLocalVisualizer for windowed float CT inputs (mmdet's stock
# browse_dataset.py draws the key slice instead of a black square).
visualizer = dict(
    type='LesionLocalVisualizer',
    vis_backends=[dict(type='LocalVisBackend')],
    name='visualizer')
