# Improved RetinaNet (Zlocha et al. 2019), full model with the backbone of
# the paper (Sec. 2.1: "Our specific network follows the structure of
# VGG-19"; ResNet-50 performed worse on DeepLesion). LesionVGG returns the
# five pooled VGG stages as C1..C5 (strides 2..32, channels 64, 128, 256,
# 512, 512); ImageNet weights of torchvision's vgg19 (same parameter names).
_base_ = './improved-retinanet_r50_densefpn-ag_adam-plateau_deeplesion.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='LesionVGG',
        depth=19,
        in_channels=3,
        out_indices=(0, 1, 2, 3, 4),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.pytorch.org/models/'
            'vgg19-dcbb9e9d.pth')),
    neck=dict(in_channels=[128, 256, 512, 512], stem_channels=64))
