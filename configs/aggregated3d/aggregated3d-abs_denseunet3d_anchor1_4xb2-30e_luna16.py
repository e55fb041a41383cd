# One round of Anchor Based Sampling on the 3D-AG row (Table III "Crop 128†,
# DA, Magnify, Joint"; Sec. IV-C): starting from the trained 50-epoch model
# of the same fold, 30 more epochs (Table II caption: "with ABS, an
# additional 30 epochs of training is conducted") whose crops favour the
# hard regions that model found on the training scans:
#   python tools/train.py \
#       configs/aggregated3d/aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py \
#       --fold 0
#   python tools/analysis_tools/find_hard_regions.py \
#       configs/aggregated3d/aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py \
#       work_dirs/aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16_fold0/\
# epoch_50.pth --fold 0 --out \
#       work_dirs/aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16_fold0/\
# hard_regions_fold0.json
#   python tools/train.py THIS_CONFIG --fold 0
# Another fold k: --fold k in all three commands (the `fold0` in load_from
# and hard_regions_file below then becomes `fold<k>`).
# Choices where the paper is silent: 30 % of the crops on hard regions (the
# rest as in round one: 70 % near a nodule, else uniform); lr 0.001 (the
# first round's middle step) for 20 epochs then 0.0001, no warm-up (the
# weights are trained); the adaptive focal loss keeps T at its final value
# 10 (round one ended there; restarting at 1 would re-weight the negatives
# as for an untrained model).
_base_ = './aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py'

first_round = 'work_dirs/aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16_fold0/'
load_from = first_round + 'epoch_50.pth'
load_from_allowed_missing = []  # round one trained every branch
hard_regions_file = first_round + 'hard_regions_fold0.json'

model = dict(rpn_head=dict(loss_cls=dict(t_start=10.0, t_end=10.0)))

train_pipeline = [
    dict(type='LoadCTVolume', spacing_zyx=(1., 1., 1.)),
    {{_base_.lung_crop}},
    dict(type='HardRegionRandomCrop3D', hard_regions_file=hard_regions_file,
         hard_prob=0.3, crop_size=128, pos_prob=0.7, margin=8,
         pad_value=-1024.),
    {{_base_.augmentation}},
    dict(type='WindowHU', window=(-1200., 600.), out_range=(-1., 1.)),
    dict(type='PackVolumeDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

max_epochs = 30
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[20], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=0.001))
