# Table 6 idea ("random ALB", Li and Talwalkar 2019) on the demo data:
# elixirnet-alb_r18-tiny_fpn_1x_deeplesion-demo.py (FPN + ALB, the model of
# Table 6's rows) with a random genotype instead of a searched one. The
# genotype below was drawn once, uniformly over the 8 operations other than
# 'none' and over the allowed inputs of every branch (Python's
# random.seed(2020)), and is fixed here so that every run compares against
# the same architecture.
_base_ = './elixirnet-alb_r18-tiny_fpn_1x_deeplesion-demo.py'

random_genotypes = dict(
    normal=dict(
        ops=[('sep_conv_3x3', 0), ('non_local', 0), ('dil_conv_3x3_d3', 1),
             ('sep_conv_3x3', 0), ('non_local', 0), ('sep_conv_5x5', 1),
             ('sep_conv_5x5', 1), ('non_local', 3)],
        concat=[1, 2, 3, 4]),
    reduce=dict(
        ops=[('avg_pool_3x3', 0), ('non_local', 0), ('skip_connect', 1),
             ('skip_connect', 1), ('sep_conv_5x5', 0), ('avg_pool_3x3', 2),
             ('sep_conv_1x3_3x1', 1), ('skip_connect', 2)],
        concat=[1, 2, 3, 4]))

model = dict(roi_head=dict(bbox_head=dict(genotypes=random_genotypes)))
