# Copyright (c) mmlesion contributors. All rights reserved.
"""Uniform sampling of ALB genotypes for random search with weight sharing.

ElixirNet, Table 6, row "random ALB (Li and Talwalkar 2019)": random search
with weight sharing over the same search space. Li and Talwalkar ("Random
Search and Reproducibility for Neural Architecture Search", UAI 2019, §4 and
their ``randomNAS_release`` code) train the shared supernet weights with one
architecture sampled uniformly per minibatch, then rank 1000 sampled
architectures by their validation error on 10 minibatches, evaluate the best
10 on the whole validation split and keep the best one.

A genotype is the ALB format (:mod:`mmlesion.methods.elixirnet.models.alb_cell`): per
branch two ``(operation, input_index)`` entries. As their ``sample_arch``,
:func:`sample_genotypes` draws every operation uniformly (``none``
included) and, for branch ``b >= 2``, two **distinct** inputs among ``0 ..
b - 1`` (in increasing order, as the argmax derivation writes them); branch
1 can only read the cell input (ALB cells have one input), so both of its
entries read input 0. :class:`RandomSearchMixin` holds the random strategy
of :class:`~mmlesion.methods.elixirnet.nas.ALBSearchLoop`.
"""
import contextlib
import itertools
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
from mmengine.dist import all_reduce, is_main_process
from mmengine.logging import print_log

from mmlesion.utils.writing.atomic import atomic_write_json

from ..models.alb_cell import Genotypes

GENOTYPE_KEYS = ('normal', 'reduce')

#: Stream of the per-iteration training samples (seeded generators).
TRAIN_STREAM = 0
#: Stream of the candidates ranked at the end of the search.
CANDIDATE_STREAM = 1


def genotype_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    """The generator of sample ``index`` of a stream, for a search seed.

    A generator per sample (``SeedSequence([seed, stream, index])``): a
    resumed search, and every rank, draws the same genotypes.

    Args:
        seed (int): the search seed (the runner's training seed).
        stream (int): :data:`TRAIN_STREAM` or :data:`CANDIDATE_STREAM`.
        index (int): iteration or candidate index.

    Returns:
        numpy.random.Generator: a fresh generator.
    """
    return np.random.default_rng([int(seed) % 2**63, int(stream), int(index)])


def sample_genotypes(rng: np.random.Generator,
                     op_names: Sequence[str],
                     num_branches: int = 4,
                     exclude_ops: Sequence[str] = ()) -> Genotypes:
    """Draw ``dict(normal=..., reduce=...)`` uniformly (Li and Talwalkar).

    Args:
        rng (numpy.random.Generator): the random source.
        op_names (Sequence[str]): the search space's operations.
        num_branches (int): B. Defaults to 4.
        exclude_ops (Sequence[str]): operations never drawn (e.g.
            ``('none', )`` to draw only what the argmax derivation can
            output). Defaults to none excluded, as Li and Talwalkar.

    Returns:
        dict: the two cell genotypes, ``concat`` = all branches.

    Raises:
        ValueError: if no operation is left to draw.
    """
    choices = [op for op in op_names if op not in set(exclude_ops)]
    if not choices:
        raise ValueError(f'No operation left to sample: op_names={op_names}, '
                         f'exclude_ops={exclude_ops}')
    out = {}
    for key in GENOTYPE_KEYS:
        ops = []
        for branch in range(num_branches):
            # branch b reads two distinct inputs of 0..b-1 (branch 1: 0, 0)
            inputs = [0, 0] if branch == 0 else sorted(
                int(j) for j in rng.choice(branch + 1, 2, replace=False))
            for index in inputs:
                ops.append((choices[int(rng.integers(len(choices)))], index))
        out[key] = dict(ops=ops, concat=list(range(1, num_branches + 1)))
    return out


@contextlib.contextmanager
def sampled(head: nn.Module, genotypes: Genotypes):
    """Run ``head`` with ``genotypes`` on its shared search weights."""
    head.set_sampled_genotypes(genotypes)
    try:
        yield
    finally:
        head.set_sampled_genotypes(None)


class RandomSearchMixin:
    """The random strategy of :class:`~mmlesion.methods.elixirnet.nas.ALBSearchLoop`: the
    draws and Li and Talwalkar's final ranking, on the loop's attributes
    (``search_head``, ``arch_dataloader``, ``sample_seed``, ...).
    """

    def _sample(self, stream: int, index: int) -> Genotypes:
        """Sample ``index`` of ``stream`` in the search head's space."""
        head = self.search_head
        return sample_genotypes(
            genotype_rng(self.sample_seed, stream, index), head.op_names,
            head.num_branches, self.exclude_ops)

    def sample_training_genotypes(self, index: int) -> Genotypes:
        """The genotype the random strategy trains at iteration ``index``."""
        return self._sample(TRAIN_STREAM, index)

    def sample_candidate_genotypes(self, index: int) -> Genotypes:
        """Candidate ``index`` ranked at the end of the random strategy."""
        return self._sample(CANDIDATE_STREAM, index)

    @torch.no_grad()
    def select_random_genotypes(self) -> Genotypes:
        """Rank sampled genotypes by their arch-half loss; return the best.

        Li and Talwalkar's final stage: candidates on ``candidate_batches``
        batches, the ``num_finalists`` best on ``finalist_batches``. Scores
        are mean total losses over the batches of all ranks (lower is
        better, ties to the earlier candidate). Writes
        ``random_search.json``.

        Returns:
            dict: the selected genotypes.
        """
        model = self.detector
        was_training = model.training
        model.eval()  # BN running statistics, as their evaluate()
        try:
            batches = self._first_arch_batches(self.candidate_batches)
            candidates = [self.sample_candidate_genotypes(k)
                          for k in range(self.num_candidates)]
            scores = []
            for k, genotypes in enumerate(candidates):
                scores.append(self._score(genotypes, batches))
                if (k + 1) % 100 == 0 or k + 1 == len(candidates):
                    print_log(f'random ALB search: scored {k + 1}/'
                              f'{len(candidates)} candidates (best loss '
                              f'{min(scores):.4f})', logger='current')
            order = sorted(range(len(candidates)),
                           key=lambda k: (scores[k], k))
            finalists = order[:self.num_finalists]
            final_scores: Dict[int, float] = {}
            if finalists:
                batches = None if self.finalist_batches is None \
                    else self._first_arch_batches(self.finalist_batches)
                for k in finalists:
                    final_scores[k] = self._score(candidates[k], batches)
                best = min(finalists, key=lambda k: (final_scores[k], k))
            else:
                best = order[0]
        finally:
            model.train(was_training)
        self._write_random_report(candidates, scores, final_scores, best)
        print_log(
            f'random ALB search: candidate {best} selected (loss '
            f'{final_scores.get(best, scores[best]):.4f}).',
            logger='current')
        return candidates[best]

    def _first_arch_batches(self, num: int) -> List[Any]:
        """The first ``num`` batches of the arch half (a fixed order)."""
        self._set_arch_sampler_epoch(0)
        return list(itertools.islice(self.arch_dataloader, num))

    def _score(self, genotypes: Genotypes,
               batches: Optional[List[Any]]) -> float:
        """Mean total loss of ``genotypes`` with the shared weights.

        Args:
            genotypes (dict): the genotypes to run.
            batches (list, optional): the batches; None: one pass over the
                arch half (in a fixed order).

        Returns:
            float: the loss averaged over batches (and ranks).
        """
        model = self.detector
        if batches is None:
            self._set_arch_sampler_epoch(0)
            batches = self.arch_dataloader
        total = torch.zeros(2, dtype=torch.float64)
        devices = [torch.cuda.current_device()] \
            if torch.cuda.is_available() else []
        with sampled(self.search_head, genotypes), \
                torch.random.fork_rng(devices=devices):
            for b, batch in enumerate(batches):
                # the same RoI sampling for every candidate
                torch.manual_seed(self.sample_seed + b + 1)
                data = model.data_preprocessor(batch, True)
                losses = model._run_forward(data, mode='loss')
                loss, _ = model.parse_losses(losses)
                total[0] += float(loss)
                total[1] += 1
        all_reduce(total)
        return float(total[0] / total[1].clamp(min=1))

    def _write_random_report(self, candidates: List[Genotypes],
                             scores: List[float],
                             final_scores: Dict[int, float],
                             best: int) -> Optional[str]:
        """``{work_dir}/random_search.json``: every candidate's scores."""
        if not is_main_process():
            return None
        path = osp.join(self.runner.work_dir, 'random_search.json')
        report = dict(
            strategy='random search with weight sharing (Li and Talwalkar '
            '2019)',
            seed=self.sample_seed,
            trained_iterations=self._iter,
            score='mean total detection loss on the arch half (eval mode, '
            'shared weights); lower is better',
            candidate_batches=self.candidate_batches,
            finalist_batches=self.finalist_batches,
            selected=best,
            candidates=[dict(index=k, loss=scores[k],
                             finalist_loss=final_scores.get(k),
                             genotypes=candidates[k])
                        for k in range(len(candidates))])
        atomic_write_json(path, report, indent=1)
        return path
