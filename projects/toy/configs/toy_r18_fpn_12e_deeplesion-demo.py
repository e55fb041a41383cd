# The toy method (projects/toy/README.md): the README's demo Faster R-CNN
# (ResNet-18 FPN, 3 slices at 2 mm, from scratch) keeping at most 20 boxes
# a slice, 12 epochs on the synthetic demo DeepLesion set.
_base_ = ['../../../configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py']
custom_imports = dict(
    imports=['mmlesion', 'projects.toy.toy'], allow_failed_imports=False)

model = dict(type='ToyDetector', test_cfg=dict(max_per_slice=20))

train_cfg = dict(max_epochs=12)
