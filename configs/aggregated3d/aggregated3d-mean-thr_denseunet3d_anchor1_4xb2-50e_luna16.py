# A variant of the 3D-AG row (not in the paper's tables): the paper's test
# threshold 0.269 = sigmoid(-1) (Sec. IV-F) read as a threshold on the final
# score, the mean of the RPN and FPRN probabilities (Sec. III-C), instead of
# on the RPN's objectness (the paper rows; see README.md, "Choices the paper
# leaves open"). Every RPN proposal reaches the FPRN; a detection is kept
# when (p_RPN + p_FPRN) / 2 > 0.269.
_base_ = './aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py'
model = dict(test_cfg=dict(rpn=dict(score_thr=0.0), score_thr=0.269))
