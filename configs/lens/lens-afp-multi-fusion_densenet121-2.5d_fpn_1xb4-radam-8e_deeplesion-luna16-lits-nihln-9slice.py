# LENS Table I row (c): AFP + multi-dataset (DeepLesion, LUNA16, LiTS,
# NIH-LN) + proposal fusion of the four dataset experts at test time.
# ImageNet DenseNet-121 (torchvision weights, downloaded on first use),
# RAdam lr 1e-4, 8 epochs, x0.1 after 4 and 6; batches of 4 slices from one
# dataset, positives : negatives 2 : 1.
_base_ = [
    '../_base_/models/lens_densenet121_fpn.py',
    '../_base_/datasets/lens_multi_9slice.py',
    '../_base_/schedules/schedule_lens_radam_8e.py',
    '../_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['mmlesion', 'mmlesion.methods.lens'],
    allow_failed_imports=False)
default_scope = 'mmdet'

# Atomic, checksummed checkpoints and an exact resume (README "Faults
# and recovery"); mmdet's runtime has neither.
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', interval=1),
    random_state=dict(type='RandomStateHook'))
