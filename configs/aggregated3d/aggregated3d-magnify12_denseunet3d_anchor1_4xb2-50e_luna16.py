# A variant of the 3D-AG row (not in the paper's tables): Local
# Magnification with stride-2 deconvolutions, so the 3^3 feature window is
# magnified 4x to 12^3 instead of Table I's 5^3 (the stride-1 default).
_base_ = './aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py'
model = dict(fprn_head=dict(magnify_stride=2))
