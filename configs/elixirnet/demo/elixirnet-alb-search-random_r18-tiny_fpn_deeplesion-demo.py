# Demo-sized Table 6 "random ALB (Li and Talwalkar 2019)"
# (../alb_search/elixirnet-alb-search-random_r50_fpn_4xb4-15e_deeplesion-
# 3slice.py): the demo ALB search (elixirnet-alb-search_r18-tiny_fpn_
# deeplesion-demo.py) with random search with weight sharing instead of the
# differentiable strategy: the same 3 epochs over the same weight half, one
# uniformly drawn genotype per weight step, no alpha step; then drawn
# genotypes ranked by the detection loss on the arch half with the shared
# weights. Fewer candidates than the full config's (and Li and Talwalkar's)
# 1000 x 10 batches, so that the ranking takes a few CPU minutes: 100
# candidates on 2 batches, the best 5 on the whole arch half. The result goes
# into the demo "+ALB" config (a random genotype may lack the Non-local
# operator the RTM needs). Train the demo FPN baseline first (see the demo
# search config), then search and train the result:
#   python tools/search_alb.py THIS_CONFIG --train
# writes work_dirs/<this config>/genotype.py, random_search.json and
# work_dirs/<this config>/elixirnet-alb-searched-random_r18-tiny_fpn_1x_deeplesion-demo.py
_base_ = ['./elixirnet-alb-search_r18-tiny_fpn_deeplesion-demo.py']

train_cfg = dict(
    strategy='random',
    num_candidates=100,
    candidate_batches=2,
    num_finalists=5,
    finalist_batches=None)

searched_config_base = 'elixirnet-alb_r18-tiny_fpn_1x_deeplesion-demo.py'
