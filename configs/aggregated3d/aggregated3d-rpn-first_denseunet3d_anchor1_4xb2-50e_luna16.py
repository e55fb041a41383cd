# The schedule of Sec. III-E in ONE run from scratch (a variant; the Table
# III configs run it as two stages, RPN config then this model from its
# checkpoint): the first 20 % of the iterations (an iteration count, since
# the number per epoch depends on the fold) train the RPN only, then both
# branches jointly. 888 scans x 0.9 x 6 crops per scan / batch 2 ~ 2,400
# iterations per epoch -> 10 epochs.
_base_ = './aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py'
model = dict(train_cfg=dict(rpn_only_iters=24000))
load_from = None
load_from_allowed_missing = []
