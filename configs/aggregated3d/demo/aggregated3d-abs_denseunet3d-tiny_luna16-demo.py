# Demo: one round of Anchor Based Sampling (Sec. IV-C) on the synthetic
# volumes. After training the demo model
# (aggregated3d_denseunet3d-tiny_luna16-demo.py, 6 epochs):
#   python tools/analysis_tools/find_hard_regions.py \
#       configs/aggregated3d/demo/aggregated3d_denseunet3d-tiny_luna16-demo.py \
#       work_dirs/aggregated3d_denseunet3d-tiny_luna16-demo/epoch_6.pth \
#       --out \
#       work_dirs/aggregated3d_denseunet3d-tiny_luna16-demo/hard_regions.json
# then this config continues from that checkpoint for 6 more epochs with 30 %
# of the crops on the hard regions (the ratio of the LUNA16 ABS config,
# aggregated3d-abs_denseunet3d_anchor1_4xb2-30e_luna16.py, and the same choices:
# lower lr, T of the adaptive focal loss kept at its final value).
_base_ = './aggregated3d_denseunet3d-tiny_luna16-demo.py'

first_round = 'work_dirs/aggregated3d_denseunet3d-tiny_luna16-demo/'
load_from = first_round + 'epoch_6.pth'
hard_regions_file = first_round + 'hard_regions.json'

model = dict(rpn_head=dict(loss_cls=dict(t_start=10.0, t_end=10.0)))

train_dataloader = dict(dataset=dict(dataset=dict(pipeline=[
    dict(type='LoadCTVolume', spacing_zyx=(1., 1., 1.)),
    dict(type='HardRegionRandomCrop3D', hard_regions_file=hard_regions_file,
         hard_prob=0.3, crop_size=48, pos_prob=0.7, margin=4,
         pad_value=-1024.),
    dict(type='WindowHU', window=(-1200., 600.), out_range=(-1., 1.)),
    dict(type='PackVolumeDetInputs')
])))

max_epochs = 6
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[4], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=2e-4))
default_hooks = dict(checkpoint=dict(interval=max_epochs))
