# Demo-sized Table 6 "ALB w/o our search space"
# (../alb_search/elixirnet-alb-search-dartsspace_r50_fpn_4xb4-15e_deeplesion-
# 3slice.py): the demo ALB search (elixirnet-alb-search_r18-tiny_fpn_
# deeplesion-demo.py) over DARTS' 8 operations (DARTS_OP_NAMES) instead of
# the paper's 9. The result goes into the demo "+ALB" config (no RTM: the
# DARTS space has no Non-local operator). Train the demo FPN baseline first
# (see the demo search config), then search and train the result:
#   python tools/search_alb.py THIS_CONFIG --train
# writes work_dirs/<this config>/genotype.py and
# work_dirs/<this config>/elixirnet-alb-searched-dartsspace_r18-tiny_fpn_1x_deeplesion-demo.py
_base_ = ['./elixirnet-alb-search_r18-tiny_fpn_deeplesion-demo.py']

model = dict(
    roi_head=dict(
        bbox_head=dict(op_names=[  # = DARTS_OP_NAMES
            'none', 'max_pool_3x3', 'avg_pool_3x3', 'skip_connect',
            'darts_sep_conv_3x3', 'darts_sep_conv_5x5', 'darts_dil_conv_3x3',
            'darts_dil_conv_5x5'
        ])))

searched_config_base = 'elixirnet-alb_r18-tiny_fpn_1x_deeplesion-demo.py'
