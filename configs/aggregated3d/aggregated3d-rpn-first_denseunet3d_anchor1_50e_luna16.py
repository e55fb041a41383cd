# The schedule of Sec. III-E: "we first train the RPN ... to acquire a good
# initialization for the backbone ... after that, we add the FPRN branch",
# then joint training. Here: the first 20 % of the iterations (an iteration
# count, since the number per epoch depends on the fold) train the RPN only.
# 888 scans x 0.9 / batch 2 ~ 400 iterations per epoch -> 10 epochs.
_base_ = './aggregated3d_denseunet3d_anchor1_50e_luna16.py'
model = dict(train_cfg=dict(rpn_only_iters=4000))
