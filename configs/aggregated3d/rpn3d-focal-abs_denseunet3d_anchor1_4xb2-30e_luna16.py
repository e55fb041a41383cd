# Table II row f ("DenseBlock + anchor1†", multi-scale, focal loss, RPN
# only): one round of Anchor Based Sampling after row d
# (rpn3d-focal_denseunet3d_anchor1_4xb2-50e_luna16.py), with the hard regions that
# row's model finds on the training scans (find_hard_regions.py, as in
# aggregated3d-abs_denseunet3d_anchor1_4xb2-30e_luna16.py, whose ABS settings this
# inherits).
_base_ = './aggregated3d-abs_denseunet3d_anchor1_4xb2-30e_luna16.py'

first_round = 'work_dirs/rpn3d-focal_denseunet3d_anchor1_4xb2-50e_luna16_fold0/'
load_from = first_round + 'epoch_50.pth'
model = dict(fprn_head=None)
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadCTVolume', spacing_zyx=(1., 1., 1.)),
    {{_base_.lung_crop}},
    dict(type='HardRegionRandomCrop3D',
         hard_regions_file=first_round + 'hard_regions_fold0.json',
         hard_prob=0.3, crop_size=128, pos_prob=0.7, margin=8,
         pad_value=-1024.),
    {{_base_.augmentation}},
    dict(type='WindowHU', window=(-1200., 600.), out_range=(-1., 1.)),
    dict(type='PackVolumeDetInputs')
]))
