# Table III "Crop 96, DA, Magnify, Joint": 96^3 training crops (and
# windows), from the same RPN stage as the crop-128 rows (load_from: the
# RPN is fully convolutional; the paper does not say which crop its RPN
# stage used).
_base_ = './aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py'
crop_size = 96
train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(type='LoadCTVolume', spacing_zyx=(1., 1., 1.)),
        {{_base_.lung_crop}},
        dict(type='RandomCrop3D', crop_size=crop_size, pos_prob=0.7,
             margin=8, pad_value=-1024.),
        {{_base_.augmentation}},
        dict(type='WindowHU', window=(-1200., 600.), out_range=(-1., 1.)),
        dict(type='PackVolumeDetInputs')
    ]))
model = dict(test_cfg=dict(window_size=crop_size))
