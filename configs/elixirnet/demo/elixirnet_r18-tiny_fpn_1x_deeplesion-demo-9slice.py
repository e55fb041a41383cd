# Demo-sized ElixirNet with FPN on 9 slices (elixirnet-fig3geno_r50_fpn_1x_deeplesion_
# 9slice.py): elixirnet_r18-tiny_fpn_1x_deeplesion-demo.py with a 9-channel
# ResNet stem and 9 slices at 2 mm.
_base_ = './elixirnet_r18-tiny_fpn_1x_deeplesion-demo.py'

num_slices = 9
model = dict(
    # mmengine's ImgDataPreprocessor accepts 1 or 3 mean/std values only;
    # the input is already windowed, so normalisation is simply off.
    data_preprocessor=dict(mean=None, std=None),
    backbone=dict(in_channels=num_slices))

train_pipeline = [
    dict(t, num_slices=num_slices)
    if t['type'] == 'LoadDeepLesionSlices' else t
    for t in _base_.train_pipeline
]
test_pipeline = [
    dict(t, num_slices=num_slices)
    if t['type'] == 'LoadDeepLesionSlices' else t
    for t in _base_.test_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
