# LENS Table I baseline: MULAN's detector (configs/_base_/models/
# mulan_densenet121_fpn.py) on DeepLesion, with the same data, optimiser and
# schedule as the LENS rows.
_base_ = [
    '../_base_/models/mulan_densenet121_fpn.py',
    '../_base_/datasets/lens_multi_9slice.py',
    '../_base_/schedules/schedule_lens_radam_8e.py',
    '../_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['mmlesion', 'mmlesion.methods.lens'],
    allow_failed_imports=False)
default_scope = 'mmdet'

# mmdet's Faster R-CNN with its boxes mapped back through the test-time
# border crop (the LENS rows' test settings)
model = dict(type='UncroppedFasterRCNN')
train_dataloader = dict(
    dataset=dict(
        datasets=[{{_base_.deeplesion_train}}],
        dataset_names=['deeplesion']))

# Atomic, checksummed checkpoints and an exact resume (README "Faults
# and recovery"); mmdet's runtime has neither.
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', interval=1),
    random_state=dict(type='RandomStateHook'))
