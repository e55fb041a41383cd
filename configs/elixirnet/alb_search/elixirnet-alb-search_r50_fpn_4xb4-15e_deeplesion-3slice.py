# ElixirNet "Auto-Lesion Block Search" with the paper's settings: the
# differentiable (first-order DARTS) search of the ALB / ALBr genotypes on
# the FPN baseline, 3 DeepLesion slices.
#   * "feature extractor and RPN are frozen with initializing pretrained
#     baseline network on DeepLesion": load_from = the trained FPN baseline
#     (../faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py); ALBSearchLoop freezes
#     backbone, neck and rpn_head; the ALB head is new (its keys are missing
#     from the checkpoint, which mmengine reports and skips).
#   * "B = 4 and the initial channels D of each branch is 16": 3x3 conv to
#     4 x 16 = 64 channels (the final network doubles D: 128).
#   * "split half of the DeepLesion training data as the val set": the loop
#     splits train_dataloader into a weight half and an arch half (seeded).
#   * "15 epochs with batch size = 16 (same with validation sets)": 4 GPUs x
#     4 images for both halves.
#   * weights: momentum SGD, lr 0.02 annealed to zero by a cosine schedule,
#     momentum 0.9, weight decay 3e-4; alpha: Adam, lr 3e-4, "momentum 0.999"
#     (betas (0.5, 0.999) as in DARTS), weight decay 1e-3.
# Run (4 GPUs):
#   python -m torch.distributed.run --nproc_per_node=4 tools/search_alb.py \
#       THIS_CONFIG --launcher pytorch [--load-from BASELINE.pth]
# Result: {work_dir}/genotype.py, a `genotypes = dict(normal=, reduce=)`
# snippet for the ElixirNet configs (mmlesion.methods.elixirnet.nas.apply_genotypes).
_base_ = ['../elixirnet-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py']

branch_channels = 16  # D of the search
model = dict(
    roi_head=dict(
        bbox_head=dict(
            search=True,
            genotypes=None,
            conv_out_channels=4 * branch_channels)))

# 4 GPUs x 4 images = 16 per step, for the weight half and the arch half.
train_dataloader = dict(batch_size=4)

max_epochs = 15
train_cfg = dict(
    _delete_=True,
    type='ALBSearchLoop',
    max_epochs=max_epochs,
    split_seed=0,
    split_ratio=0.5,
    split_group_key=None,  # the paper splits images; 'patient_id' also works
    frozen_modules=('backbone', 'neck', 'rpn_head'),
    arch_start_epoch=0)
# The search does not validate; the searched genotype is then trained and
# evaluated with the ordinary ElixirNet configs.
val_dataloader = None
val_cfg = None
val_evaluator = None

optim_wrapper = dict(
    _delete_=True,
    constructor='ALBSearchOptimWrapperConstructor',
    weight=dict(
        type='OptimWrapper',
        optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=3e-4),
        # DARTS' gradient clipping of the weights (not stated in the paper)
        clip_grad=dict(max_norm=5., norm_type=2)),
    arch=dict(
        type='OptimWrapper',
        optimizer=dict(
            type='Adam', lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)))
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
auto_scale_lr = dict(enable=False, base_batch_size=16)

default_hooks = dict(
    checkpoint=dict(
        type='AtomicCheckpointHook', interval=1, max_keep_ckpts=2,
        save_best=None))
# Distributed runs: each step leaves the other optimizer's parameters
# without gradient (read by mmengine's runner and by tools/search_alb.py).
find_unused_parameters = True

# The ElixirNet config that tools/search_alb.py writes a ready config for
# (inheriting it with the searched genotypes), relative to this file.
searched_config_base = '../elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py'

load_from = 'work_dirs/faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice/epoch_12.pth'
