# Plain mmdet Faster R-CNN R50-FPN with deformable convolutions v2 in stages
# C3-C5 ("Deformv2" baseline of ElixirNet Tables 1 and 3), 9 slices. The
# backbone change is exactly that of
# mmdet::dcnv2/faster-rcnn_r50-mdconv-c3-c5_fpn_1x_coco.py (that file also
# brings COCO data, so it cannot be listed next to the DeepLesion dataset
# base; tests/test_configs/test_elixirnet_configs.py checks the two agree).
_base_ = './faster-rcnn_r50_fpn_4xb2-1x_deeplesion-9slice.py'

model = dict(
    backbone=dict(
        dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)))
