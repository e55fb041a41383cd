# LENS Table II, "FCOS, one stage": the two-stage FCOS row without LENS's
# detection head ("We also tried to use FCOS as the proposal network and
# remove the detection head of LENS to make it a one-stage detector"): the
# same backbone, FPN level and one FCOSHead per dataset, whose detections are
# that dataset's expert (LENSOneStage); the four experts are fused at test
# time as in (d). Each head detects with the test settings of the detection
# head it replaces (scores down to 0.01, NMS 0.5, 100 per slice; the 1000
# best locations before NMS, as the proposals).
_base_ = './lens-fcos-multi-fusion-mining_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice.py'

model = dict(
    _delete_=True,
    type='LENSOneStage',
    num_datasets={{_base_.model.num_datasets}},
    dataset_names={{_base_.model.dataset_names}},
    data_preprocessor={{_base_.model.data_preprocessor}},
    backbone={{_base_.model.backbone}},
    neck={{_base_.model.neck}},
    bbox_head={{_base_.model.rpn_head}},
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.01,
        nms=dict(type='nms', iou_threshold=0.5),
        max_per_img=100,
        expert_fusion={{_base_.model.test_cfg.expert_fusion}}))
