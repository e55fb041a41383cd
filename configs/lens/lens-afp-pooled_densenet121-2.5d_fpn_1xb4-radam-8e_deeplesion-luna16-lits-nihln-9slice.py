# LENS Table IV, "Data pooling [31]": DeepLesion, LUNA16, LiTS and NIH-LN
# "directly pooled ... and treat[ed] as one task": the single-dataset model
# of Table I row (a) (one AFP, one expert; "They all used the same backbone
# and AFP") trained on the four sets as one LENS dataset (dataset_ids all 0:
# batches mix them, positives : negatives 2 : 1 over the pool). No mining (as
# "Single dataset"); tested as row (a).
_base_ = './lens-afp_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice.py'

model = dict(dataset_names=['pooled'])
train_dataloader = dict(
    dataset=dict(
        datasets=[
            {{_base_.deeplesion_train}}, {{_base_.luna16_train}},
            {{_base_.lits_train}}, {{_base_.nih_ln_train}}
        ],
        dataset_names=['pooled'],
        dataset_ids=[0, 0, 0, 0]))
