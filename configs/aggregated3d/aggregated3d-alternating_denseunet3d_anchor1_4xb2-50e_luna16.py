# Table III "Crop 96, DA, Magnify, Alternating" (the paper's only
# alternating row is a crop-96 row): after the RPN stage (load_from, as in
# every Table III row), the RPN and FPRN losses are trained in turn, one
# iteration each, on 96^3 crops.
_base_ = './aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16-crop96.py'
model = dict(train_cfg=dict(mode='alternating', alternate_interval=1))
