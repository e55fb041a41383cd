# DeepLesion as 3D, Tables V and VI "3D-AG *": the 3D-AG model and training
# of aggregated3d_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d.py
# (its checkpoint is the one tested), tested without the very large
# lesions: "With '*' means large lesions (>48 mm) are removed"; "When
# testing, we report both the results with and without very large nodules"
# (Sec. V-B). The lesions of the test chunks whose diameter is at least
# 48 mm (the rule that drops them from training) leave the ground truth;
# the marks on them become false positives (ground truth filtered, every
# mark kept, as Table VI's subsets).
_base_ = './aggregated3d_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d.py'
test_evaluator = dict(max_diameter_mm=48.)
