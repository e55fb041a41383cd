# Table II row d (and Table III "RPN" baseline): multi-scale anchor1,
# adaptive focal loss, no FPRN branch.
_base_ = './aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py'
# This is the first stage of the Table III rows (Sec. III-E): trained from
# scratch; they start from its epoch_50.pth.
model = dict(fprn_head=None)
load_from = None
load_from_allowed_missing = []
