# Table III "Crop 96/128, DA, Magnify, Alternating": RPN and FPRN losses
# trained in turn, one iteration each (after no RPN-only warm-up).
_base_ = './aggregated3d_denseunet3d_anchor1_50e_luna16.py'
model = dict(train_cfg=dict(mode='alternating', alternate_interval=1))
