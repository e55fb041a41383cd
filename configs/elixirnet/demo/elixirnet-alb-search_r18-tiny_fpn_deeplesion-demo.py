# Demo-sized ALB search (elixirnet-alb-search_r50_fpn_4xb4-15e_deeplesion-3slice
# .py) on the generated demo data, small enough for 2 CPU cores in minutes
# (about 5 minutes, 3 epochs of 37 alternating iterations): the demo FPN
# baseline's backbone / neck / RPN frozen (train the baseline first:
#   python tools/train.py \
#       configs/elixirnet/demo/faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo.py),
# D = 4 channels per branch (the demo ElixirNet trains with 8), 7 x 7 RoIs,
# 64 sampled RoIs per image; the paper's optimisers, alpha's lr x10 (below).
# Then:
#   python tools/search_alb.py THIS_CONFIG
# writes work_dirs/<this config>/genotype.py and the ready config
# work_dirs/<this config>/elixirnet-searched_r18-tiny_fpn_1x_deeplesion-demo.py
# (tools/train.py trains it). The result of this search on the default demo
# data is shipped as ../elixirnet-searched_r18-tiny_fpn_1x_deeplesion-demo.py.
_base_ = ['./elixirnet-alb_r18-tiny_fpn_1x_deeplesion-demo.py']

branch_channels = 4
model = dict(
    roi_head=dict(
        bbox_head=dict(
            search=True,
            genotypes=None,
            conv_out_channels=4 * branch_channels)),
    train_cfg=dict(rcnn=dict(sampler=dict(num=64))))

max_epochs = 3
train_cfg = dict(
    _delete_=True,
    type='ALBSearchLoop',
    max_epochs=max_epochs,
    split_seed=0,
    split_ratio=0.5,
    frozen_modules=('backbone', 'neck', 'rpn_head'))
val_dataloader = None
val_cfg = None
val_evaluator = None

optim_wrapper = dict(
    _delete_=True,
    constructor='ALBSearchOptimWrapperConstructor',
    weight=dict(
        type='OptimWrapper',
        optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=3e-4),
        clip_grad=dict(max_norm=5., norm_type=2)),
    # The paper's Adam with lr x10: the demo makes ~110 alpha steps where the
    # paper makes ~10k (15 epochs over half of DeepLesion at batch 16); at
    # 3e-4, softmax(alpha) would barely leave 1/9.
    arch=dict(
        type='OptimWrapper',
        optimizer=dict(
            type='Adam', lr=3e-3, betas=(0.5, 0.999), weight_decay=1e-3)))
param_scheduler = dict(
    _delete_=True,
    weight=[
        # T_max and end default to train_cfg.max_epochs (mmengine)
        dict(
            type='CosineAnnealingLR',
            eta_min=0.,
            by_epoch=True,
            begin=0,
            convert_to_iter_based=True)
    ],
    arch=[])

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(
        type='AtomicCheckpointHook', interval=1, max_keep_ckpts=1,
        save_best=None))
# Distributed runs: each step leaves the other optimizer's parameters
# without gradient (read by mmengine's runner and by tools/search_alb.py).
find_unused_parameters = True

# The ElixirNet config that tools/search_alb.py writes a ready config for
# (inheriting it with the searched genotypes), relative to this file.
searched_config_base = 'elixirnet_r18-tiny_fpn_1x_deeplesion-demo.py'

load_from = ('work_dirs/faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo/'
             'epoch_12.pth')
