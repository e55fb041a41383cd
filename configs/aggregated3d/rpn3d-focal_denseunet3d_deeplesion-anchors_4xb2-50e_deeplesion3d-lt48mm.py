# DeepLesion as 3D, Tables V and VI "RPN Baseline *": the RPN Baseline
# model and training of
# rpn3d-focal_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d.py (its
# checkpoint is the one tested), tested without the very large lesions, as
# the "3D-AG *" row (aggregated3d_..._deeplesion3d-lt48mm.py): lesions of at
# least 48 mm leave the test ground truth, the marks on them become false
# positives.
_base_ = './rpn3d-focal_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d.py'
test_evaluator = dict(max_diameter_mm=48.)
