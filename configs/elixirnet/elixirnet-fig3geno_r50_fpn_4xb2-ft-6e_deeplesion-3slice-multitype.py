# ElixirNet (FPN, 3 slices) for multi-type lesion detection with the
# Relation Transfer Module (Table 4, "ElixirNet"): the 8 coarse lesion types
# of DeepLesion (bone, abdomen, mediastinum, liver, lung, kidney, soft
# tissue, pelvis) are labelled only on the official val and test splits, so,
# as in the paper, a single-class detector trained on the train split is
# fine-tuned on the val split for 6 epochs at lr 0.002 with the feature
# extractor and the RPN frozen, and tested on the test split.
#
# Starting point: the single-class ElixirNet *without* RTM
# (elixirnet-trpn-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py), whose lesion-vs-
# background classifier fc_cls (2 x P) is the "FC 2-cls" of the paper:
# RTMBBoxHead loads it into rtm.binary_cls (M and Gamma_s) and keeps it
# frozen; the new 8-type fc_cls / fc_reg (on [f, f_E]) start from scratch,
# the 3x3 conv, ALB and ALBr from the checkpoint and are fine-tuned. The
# "w/o RTM" row starts from the same checkpoint.
_base_ = './elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py'

# the single-class TRPN + ALB detector to start from (train it first)
load_from = ('work_dirs/elixirnet-trpn-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice/'
             'epoch_12.pth')
# Fine-tuning from a single-class detector: the multi-type heads do not fit
# it, so tools/train.py loads it partially (mmengine lists what is skipped).
allow_partial_load = True

model = dict(
    # frozen feature extractor: every ResNet stage, BN statistics included
    backbone=dict(frozen_stages=4, norm_eval=True),
    roi_head=dict(bbox_head=dict(num_classes=8, freeze_binary_cls=True)))

# train on the typed val split, test on the typed test split
train_dataloader = dict(
    dataset=dict(split='val', label_mode='coarse_type'))
val_dataloader = dict(
    dataset=dict(split='test', label_mode='coarse_type'))
test_dataloader = val_dataloader

# Table 4's measure: the sensitivity of each lesion type at 3 FPs counts a
# lesion only when found with its own type (class-aware type breakdown,
# keys froc/sens@3_typecls_<type>), besides the class-agnostic FROC.
val_evaluator = dict(type_classes=True)
test_evaluator = val_evaluator

# 6 epochs at a constant lr of 0.002 (after a short warm-up); the neck (FPN)
# and the RPN get lr 0 and no weight decay, i.e. stay frozen (the backbone
# is frozen through frozen_stages). No checkpoint selection on the test
# split: evaluation only after the last epoch.
max_epochs = 6
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100)
]
optim_wrapper = dict(
    optimizer=dict(lr=0.002),
    paramwise_cfg=dict(
        custom_keys={
            'neck': dict(lr_mult=0., decay_mult=0.),
            'rpn_head': dict(lr_mult=0., decay_mult=0.)
        }))
default_hooks = dict(
    checkpoint=dict(
        type='AtomicCheckpointHook', interval=max_epochs, max_keep_ckpts=1,
        save_best=None))
