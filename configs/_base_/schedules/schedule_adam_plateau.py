# Improved RetinaNet (Zlocha et al. 2019) Sec. 2.3 "Training": Adam with a
# learning rate of 1e-4, "reduced during training by a factor of 10 when the
# mean average precision (mAP) has not improved for 2 consecutive epochs";
# batch size 4; "early stopping is used if the mAP has not improved for 4
# consecutive epochs on the validation set".
# The monitored metric is the COCO bbox mAP that FROCMetric reports with
# with_coco_map=True (the val_evaluator of the config must set it).
max_epochs = 50
plateau_monitor = 'froc/coco_bbox_mAP'

train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.))

param_scheduler = [
    dict(
        type='ReduceOnPlateauLR',
        monitor=plateau_monitor,
        rule='greater',
        factor=0.1,
        patience=2,
        by_epoch=True)
]
custom_hooks = [
    dict(
        type='EarlyStoppingHook',
        monitor=plateau_monitor,
        rule='greater',
        patience=4)
]

# The paper trains with batch size 4 (one GPU).
auto_scale_lr = dict(enable=False, base_batch_size=4)
