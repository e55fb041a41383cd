# LENS demo, row (e): the FPR network with 8 base channels, from scratch, on
# the proposals of the demo LENS model (tools/lens_fpr_proposals.py with the
# demo row (d) config), batch 8, soft-tissue window as the other demos.
_base_ = '../lens-fpr_resnet18-3d_1xb32-radam-6e_deeplesion.py'

model = dict(backbone=dict(base_channels=8, init_cfg=None), fc_channels=64)
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root='data/demo_deeplesion/',
        # 16 x 67 x 67 mm: the demo's pixels are 1.2-1.6 mm
        patch_size=(8, 48, 48),
        patch_spacing=(2., 1.4, 1.4),
        hu_window=(-250., 350.)))
