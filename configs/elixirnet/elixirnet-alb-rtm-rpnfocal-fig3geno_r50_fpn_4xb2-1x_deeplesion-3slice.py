# Table 5's focal-loss RPN row of ElixirNet ("TRPN ... outperforms focal loss
# (Lin et al. 2017b) with replacing the cross-entropy loss in RPN whose
# sensitivity at 3 FPs is 82.66%"): full ElixirNet with the TruncatedRPN
# replaced by mmdet's plain RPN whose classification loss is the sigmoid
# focal loss (gamma 2, alpha 0.25, Lin et al.'s values) instead of the
# cross-entropy. Exactly that one change against
# elixirnet-alb-rtm-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py (ALB + RTM
# with the plain cross-entropy RPN): the RPN keeps its anchors, assigner and
# 256-anchor sampler, so the focal loss weighs the sampled anchors.
_base_ = './elixirnet-alb-rtm-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py'

model = dict(
    rpn_head=dict(
        loss_cls=dict(
            _delete_=True,
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0)))
