# DeepLesion as 3D, Table V "RPN Baseline": the DeepLesion model without the
# FPRN branch, trained from scratch; also the first stage (Sec. III-E) of
# the Table V "3D-AG" config, which starts from its epoch_50.pth.
_base_ = './aggregated3d_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d.py'
model = dict(fprn_head=None)
load_from = None
load_from_allowed_missing = []
