# DeepLesion as 3D, Table V "RPN Baseline": the DeepLesion model without the
# FPRN branch.
_base_ = './aggregated3d_denseunet3d_deeplesion-anchors_50e_deeplesion3d.py'
model = dict(fprn_head=None)
