# Faster R-CNN R50-FPN, 9 slices, with a 9-channel conv1 instead of the
# 3DCE / MULAN slice groups of faster-rcnn_r50_fpn_4xb2-1x_deeplesion-9slice.py.
# conv1 cannot take the 3-channel ImageNet weights (mmengine skips the
# mismatched tensor with a warning), so it starts from random initialisation
# and the stem is trained (frozen_stages=-1); everything else loads
# torchvision://resnet50 as usual. For comparing the two 9-slice inputs.
_base_ = './faster-rcnn_r50_fpn_4xb2-1x_deeplesion-9slice.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        in_channels=9,
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet50')))
