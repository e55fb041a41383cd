# Demo-sized multi-type fine-tuning with RTM
# (elixirnet-fig3geno_r50_fpn_4xb2-ft-6e_deeplesion-3slice-multitype.py): start from the
# demo TRPN + ALB detector (train
# elixirnet-trpn-alb_r18-tiny_fpn_1x_deeplesion-demo.py first; its fc_cls becomes the RTM's binary classifier),
# fine-tune on the typed val split of the demo data for 6 epochs at lr 0.002
# (SGD) with backbone, FPN and RPN frozen, test on the typed test split.
_base_ = './elixirnet_r18-tiny_fpn_1x_deeplesion-demo.py'

load_from = ('work_dirs/elixirnet-trpn-alb_r18-tiny_fpn_1x_deeplesion-demo/'
             'epoch_12.pth')
# Fine-tuning from a single-class detector: the multi-type heads do not fit
# it, so tools/train.py loads it partially (mmengine lists what is skipped).
allow_partial_load = True

model = dict(
    backbone=dict(frozen_stages=4, norm_eval=True),
    roi_head=dict(bbox_head=dict(num_classes=8, freeze_binary_cls=True)))

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

max_epochs = 6
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20)
]
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.002, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(
        custom_keys={
            'neck': dict(lr_mult=0., decay_mult=0.),
            'rpn_head': dict(lr_mult=0., decay_mult=0.)
        }))
default_hooks = dict(
    checkpoint=dict(
        type='AtomicCheckpointHook', interval=max_epochs, max_keep_ckpts=1,
        save_best=None))
