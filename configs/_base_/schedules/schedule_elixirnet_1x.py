# ElixirNet training schedule ("Implementation Details / ElixirNet"): SGD,
# 4 GPUs x 2 images, 12 epochs, initial lr 0.02, momentum 0.9, weight decay
# 1e-4. The paper's "reduce three times (x0.01)" is not explicit about the
# steps; mmdet's 1x steps (epochs 8 and 11, x0.1) are used. Linear warm-up as
# in mmdet. With another total batch size use --auto-scale-lr.
max_epochs = 12
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[8, 11],
        gamma=0.1)
]

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))

auto_scale_lr = dict(enable=False, base_batch_size=8)
