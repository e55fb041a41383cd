# Demo RPN baseline: the demo model without the FPRN branch (same data,
# schedule and RPN), for the "RPN alone vs full model" comparison.
_base_ = './aggregated3d_denseunet3d-tiny_luna16-demo.py'
model = dict(fprn_head=None)
