# ElixirNet ablation (Table 5 text), the focal-loss RPN that TRPN is compared
# with: "TRPN can improve performance for false positive reduction and
# outperforms focal loss (Lin et al. 2017b) with replacing the cross-entropy
# loss in RPN whose sensitivity at 3 FPs (with IoU criteria) is 82.66%".
# The FPN baseline (faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py; the
# ablations "are conducted on FPN baseline", and the row TRPN beats is the
# alternative to "+ TRPN", elixirnet-trpn_r50_fpn_4xb2-1x_deeplesion-3slice.py)
# whose RPN classification loss is Lin et al.'s focal loss instead of the
# cross-entropy: sigmoid, gamma 2, alpha 0.25, over every anchor and
# normalised by the positives, as Lin et al. define it, so the RPN's
# 256-anchor sampler goes with the cross-entropy (mmdetection 1.x / 2.x drop
# it by themselves for a FocalLoss head; mmdet 3 needs sampler=None).
# Anchors, assigner, the RPN's initialisation (mmdet's, not Lin et al.'s
# prior-probability bias) and everything else are the baseline's.
_base_ = './faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py'

focal_loss = dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                  loss_weight=1.0)
model = dict(
    rpn_head=dict(loss_cls=dict(focal_loss, _delete_=True)),
    train_cfg=dict(rpn=dict(sampler=None)))
