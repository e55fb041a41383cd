# Table II row d (and Table III "RPN" baseline): multi-scale anchor1,
# adaptive focal loss, no FPRN branch.
_base_ = './aggregated3d_denseunet3d_anchor1_50e_luna16.py'
model = dict(fprn_head=None)
