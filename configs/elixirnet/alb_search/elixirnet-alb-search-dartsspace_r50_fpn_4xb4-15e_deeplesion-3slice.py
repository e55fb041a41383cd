# ElixirNet Table 6, row "ALB w/o our search space": the paper's ALB search
# (elixirnet-alb-search_r50_fpn_4xb4-15e_deeplesion-3slice.py: same frozen FPN
# baseline, halves of the TRAIN split, 15 epochs, optimisers, first-order
# DARTS) over "the search space in image classification NAS works directly",
# i.e. DARTS' 8 operations (Liu, Simonyan and Yang 2019) instead of the
# paper's 9: mmlesion.methods.elixirnet.models.alb_ops.DARTS_OP_NAMES (none,
# max_pool_3x3, avg_pool_3x3, skip_connect and DARTS' separable / dilated
# convolutions, named darts_sep_conv_3x3/5x5, darts_dil_conv_3x3/5x5 since
# they differ from ours; see the alb_ops docstring).
# Only the operation set changes, plus the config the result goes into: the
# DARTS space has no Non-local operator, which the RTM of the full ElixirNet
# needs, so the searched block goes into the "+ALB" config (FPN + ALB, the
# row Table 6 compares with: 83.88 / 34.1).
# Run (4 GPUs), search then train the result:
#   python -m torch.distributed.run --nproc_per_node=4 tools/search_alb.py \
#       THIS_CONFIG --launcher pytorch [--load-from BASELINE.pth] --train
# writes {work_dir}/genotype.py (with op_names) and
# {work_dir}/elixirnet-alb-searched-dartsspace_r50_fpn_4xb2-1x_deeplesion-3slice.py
_base_ = ['./elixirnet-alb-search_r50_fpn_4xb4-15e_deeplesion-3slice.py']

model = dict(
    roi_head=dict(
        bbox_head=dict(op_names=[  # = DARTS_OP_NAMES
            'none', 'max_pool_3x3', 'avg_pool_3x3', 'skip_connect',
            'darts_sep_conv_3x3', 'darts_sep_conv_5x5', 'darts_dil_conv_3x3',
            'darts_dil_conv_5x5'
        ])))

searched_config_base = '../elixirnet-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py'
