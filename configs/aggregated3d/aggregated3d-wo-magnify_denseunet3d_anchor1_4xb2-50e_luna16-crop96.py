# Table III "Crop 96, DA, Joint" (3D-AG-LM on 96^3 crops): RoI Align
# directly on the pyramid levels; RPN stage and crops as in the crop-96
# 3D-AG row.
_base_ = './aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16-crop96.py'
model = dict(fprn_head=dict(use_magnify=False))
