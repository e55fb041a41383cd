# LENS Sec. VI-B: RAdam (torch's), base lr 1e-4, 8 epochs, lr x0.1 after
# the 4th and 6th epochs. Dataset-specific layers get no gradient from other
# datasets' batches: DDP must allow unused parameters.
max_epochs = 8
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='RAdam', lr=1e-4))
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[4, 6],
        gamma=0.1)
]
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel', find_unused_parameters=True)
auto_scale_lr = dict(enable=False, base_batch_size=4)
