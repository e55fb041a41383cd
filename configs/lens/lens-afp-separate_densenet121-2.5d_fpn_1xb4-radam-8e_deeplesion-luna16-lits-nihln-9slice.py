# LENS Table IV, "Separate models": "learned a detector for each dataset and
# fused their proposals in inference": the single-dataset model of Table I
# row (a), one copy per dataset (LENSSeparateModels, nothing shared), each
# trained on its own dataset's batches for the schedule of (a) (one training
# of the four, as four separate trainings would), their detections pooled
# and NMS'd at test time as LENS fuses its experts. No mining.
_base_ = './lens-afp_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice.py'

model = dict(
    _delete_=True,
    type='LENSSeparateModels',
    detector={{_base_.model}},
    dataset_names=['deeplesion', 'luna16', 'lits', 'nih_ln'],
    data_preprocessor={{_base_.model.data_preprocessor}},
    test_cfg=dict(expert_fusion={{_base_.model.test_cfg.expert_fusion}}))
train_dataloader = dict(
    dataset=dict(
        datasets=[
            {{_base_.deeplesion_train}}, {{_base_.luna16_train}},
            {{_base_.lits_train}}, {{_base_.nih_ln_train}}
        ],
        dataset_names=['deeplesion', 'luna16', 'lits', 'nih_ln']))
