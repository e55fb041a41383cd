# LENS Table I row (e), the 3D FPR network (Sec. IV-D): ResNet-18 inflated
# from torchvision's ImageNet weights, 1x3x3 convs in ResBlocks 1-3, 3x3x3 in
# ResBlock 4, RoI pooling from the four blocks, focal loss; trained on LENS's
# TP and FP 3D proposals at 1 : 2 per epoch, RAdam lr 2e-4, 6 epochs, x0.1
# after epochs 2 and 4, batch 32 (Sec. VI-B). The proposals come from
#   python tools/lens_fpr_proposals.py <row (d) config> <row (d) checkpoint> \
#       --mined data/DeepLesion/lens_mined.json \
#       --out data/DeepLesion/lens_fpr_proposals.json
# Final score of a proposal: (s_LENS + s_FPR) / 2 (LENSFPR's predict mode).
_base_ = ['../_base_/default_runtime.py']
custom_imports = dict(
    imports=['mmlesion', 'mmlesion.methods.lens'],
    allow_failed_imports=False)
default_scope = 'mmdet'

model = dict(
    type='LENSFPR',
    backbone=dict(
        type='ResNet18FPR3D',
        in_channels=1,
        base_channels=64,
        z_kernels=(1, 1, 1, 3),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.pytorch.org/models/'
            'resnet18-f37072fd.pth')),
    roi_output_size=(1, 2, 2),
    fc_channels=256,
    loss_cls=dict(
        type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
        loss_weight=1.0))

train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    # TP : FP = 1 : 2 per epoch, FPs redrawn every epoch.
    batch_sampler=dict(type='LENSDatasetBatchSampler', pos_neg_ratio=0.5),
    dataset=dict(
        type='LENSFPRPatchDataset',
        data_root='data/DeepLesion/',
        ann_file='lens_fpr_proposals.json',
        data_prefix=dict(img='Images_png/'),
        # 8 x 64 x 64 voxels of 2 x 0.8 x 0.8 mm (16 x 51 x 51 mm), resampled
        # from each series' own spacing (DL_info.csv)
        patch_size=(8, 64, 64),
        patch_spacing=(2., 0.8, 0.8),
        hu_window=(-1024., 3071.)))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None

max_epochs = 6
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='RAdam', lr=2e-4))
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[2, 4],
        gamma=0.1)
]
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', interval=1),
    random_state=dict(type='RandomStateHook'))
