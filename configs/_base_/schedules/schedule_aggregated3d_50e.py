# 3D Aggregated Faster R-CNN schedule: 50 epochs from scratch (Sec. IV-B,
# "all ablation experiments undergo a 10-fold cross validation with 50
# training epochs"). The paper does not give the optimiser; SGD with
# momentum, lr 0.01 and x0.1 steps at 50 % and 80 % (the 3D RPNs it compares
# with, DeepLung / Liao et al.) with a linear warm-up.
max_epochs = 50
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=200),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[25, 40], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=8)
