# 3D-AG without Local Magnification ("3D-AG-LM"; Table III "Crop 128, DA,
# Joint"): RoI Align directly on the pyramid levels.
_base_ = './aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py'
model = dict(fprn_head=dict(use_magnify=False))
