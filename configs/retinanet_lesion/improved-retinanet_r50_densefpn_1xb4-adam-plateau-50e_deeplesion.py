# Extra (not a Table 1 row): "+ dense supervision" of Improved RetinaNet
# (Zlocha et al. 2019) on ResNet-50 instead of the paper's VGG-19:
# improved-retinanet_vgg19_densefpn_1xb4-adam-plateau-50e_deeplesion.py with
# ResNetWithStem (mmdet's ResNet-50 also returning C1, the stride-2 stem
# output before max pooling, for the P1 skip connection). Same optimised
# anchors (the anchor tool gives the same anchors for the R50 and the VGG-19
# targets: same boxes, same pyramid; see
# retinanet-optanchors_r50_fpn_1xb4-adam-plateau-50e_deeplesion.py).
_base_ = './improved-retinanet_vgg19_densefpn_1xb4-adam-plateau-50e_deeplesion.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNetWithStem',
        out_stem=True,
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(in_channels=[256, 512, 1024, 2048], stem_channels=64))
