# ElixirNet Table 6, row "random ALB (Li and Talwalkar 2019)": the paper's
# ALB search (elixirnet-alb-search_r50_fpn_4xb4-15e_deeplesion-3slice.py:
# same search space, frozen FPN baseline, halves of the TRAIN split, 15
# epochs, weight optimiser and schedule) with the differentiable strategy
# replaced by random search with weight sharing (mmlesion.methods.elixirnet.nas.ALBSearchLoop,
# strategy='random'): every weight step trains the search head with a
# genotype drawn uniformly (one operation per entry, distinct inputs), alpha
# is never stepped; at the end 1000 drawn genotypes are ranked by the
# detection loss with the shared weights on 10 batches of the arch half, the
# best 10 on the whole arch half, and the best is exported (genotype.py,
# random_search.json). The draws follow randomness.seed (another seed,
# other genotypes: --cfg-options randomness.seed=N).
# Only the strategy changes, plus the config the result goes into: a random
# genotype may hold no Non-local operator, which the RTM of the full
# ElixirNet needs, so the block goes into the "+ALB" config (FPN + ALB, the
# row Table 6 compares with: 83.88 / 34.1).
# Run (4 GPUs), search then train the result:
#   python -m torch.distributed.run --nproc_per_node=4 tools/search_alb.py \
#       THIS_CONFIG --launcher pytorch [--load-from BASELINE.pth] --train
# writes {work_dir}/genotype.py and
# {work_dir}/elixirnet-alb-searched-random_r50_fpn_4xb2-1x_deeplesion-3slice.py
_base_ = ['./elixirnet-alb-search_r50_fpn_4xb4-15e_deeplesion-3slice.py']

train_cfg = dict(
    strategy='random',
    num_candidates=1000,  # Li and Talwalkar: 1000 sampled architectures,
    candidate_batches=10,  # each on 10 minibatches,
    num_finalists=10,  # the best 10 again
    finalist_batches=None)  # on the whole arch half

searched_config_base = '../elixirnet-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py'
