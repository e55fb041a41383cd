# Table III "Crop 128, Joint" without Diameter Alignment (and without Local
# Magnification, as in the paper's row): still full-scale aggregation, but
# each level's RoI has the standard size d / stride of that level.
_base_ = './aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py'
model = dict(
    fprn_head=dict(use_diameter_alignment=False, use_magnify=False))
