# Extra (not a Table 1 row): the "original RetinaNet" row of Improved
# RetinaNet (Zlocha et al. 2019) on ResNet-50, the backbone the paper "also
# explored [...] but its performance was worse on DeepLesion" (Sec. 2.1).
# Everything but the backbone is retinanet_vgg19_fpn_1xb4-adam-plateau-50e_deeplesion.py
# (paper schedule, augmentation, smooth L1, mAP@0.5 monitor); the backbone
# and FPN are mmdet's RetinaNet R50-FPN (ImageNet weights of torchvision).
# The R50 extras of the other rows inherit this file:
#   retinanet-optanchors_r50_fpn_1xb4-adam-plateau-50e_deeplesion.py
#   improved-retinanet_r50_densefpn_1xb4-adam-plateau-50e_deeplesion.py
#   improved-retinanet_r50_densefpn-ag_1xb4-adam-plateau-50e_deeplesion.py
# and so do the CPU demo rows (*_r18-tiny_*_demo_deeplesion.py).
_base_ = './retinanet_vgg19_fpn_1xb4-adam-plateau-50e_deeplesion.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(in_channels=[256, 512, 1024, 2048], start_level=1))
