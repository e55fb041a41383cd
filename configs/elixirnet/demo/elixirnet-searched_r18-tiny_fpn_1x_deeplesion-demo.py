# ALB genotype searched by tools/search_alb.py (ALBSearchLoop, first-order DARTS).
# search config: configs/elixirnet/demo/elixirnet-alb-search_r18-tiny_fpn_deeplesion-demo.py
# baseline checkpoint (frozen backbone / neck / RPN): work_dirs/faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo/epoch_12.pth
# data: data/demo_deeplesion/ split=train (halves by split_seed=0)
# epochs: 3, iterations: 111
# finished: 2026-11-22T10:04:44Z, mmlesion 0.1.0
# command: python tools/search_alb.py configs/elixirnet/demo/elixirnet-alb-search_r18-tiny_fpn_deeplesion-demo.py --out-config configs/elixirnet/demo/elixirnet-searched_r18-tiny_fpn_1x_deeplesion-demo.py
# Baseline: python tools/train.py configs/elixirnet/demo/faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo.py
# (12 epochs, val sens@4 0.506) on the demo set of
# tools/misc/generate_demo_data.py (default seed); baseline 26 min and search
# 3 min 47 s wall on 2 CPU cores shared with other jobs. This is a demo
# search on synthetic data, not the paper's block (the paper-text genotype is
# alb_genotypes in ../_base_/models/elixirnet_components.py).
# Written by tools/search_alb.py (mmlesion.methods.elixirnet.nas.write_searched_config): the
# target config with the searched Auto-lesion Block genotypes.
_base_ = ['./elixirnet_r18-tiny_fpn_1x_deeplesion-demo.py']

model = dict(
    roi_head=dict(
        bbox_head=dict(
            search=False,
            genotypes=dict(
                _delete_=True,
                normal=dict(
                    ops=[
                        ('skip_connect', 0), ('avg_pool_3x3', 0),  # branch 1
                        ('non_local', 0), ('sep_conv_5x5', 1),  # branch 2
                        ('dil_conv_3x3_d3', 0), ('non_local', 1),  # branch 3
                        ('sep_conv_5x5', 0), ('sep_conv_5x5', 3),  # branch 4
                    ],
                    concat=[1, 2, 3, 4]),
                reduce=dict(
                    ops=[
                        ('sep_conv_1x3_3x1', 0), ('dil_conv_3x3_d3', 0),  # branch 1
                        ('avg_pool_3x3', 0), ('sep_conv_3x3', 1),  # branch 2
                        ('avg_pool_3x3', 0), ('sep_conv_3x3', 1),  # branch 3
                        ('avg_pool_3x3', 0), ('non_local', 1),  # branch 4
                    ],
                    concat=[1, 2, 3, 4])))))
