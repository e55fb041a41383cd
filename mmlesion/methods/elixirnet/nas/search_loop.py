# Copyright (c) mmlesion contributors. All rights reserved.
"""The alternating (first-order DARTS) search loop of the Auto-lesion Block.

ElixirNet, sections "Differentiable Search Strategy" and "Auto-Lesion Block
Search": on two disjoint halves of the training data the search alternates
an update of the architecture weights alpha by ``grad_alpha L_val(w, a)``
and one of the network weights w by ``grad_w L_train(w, a)``, with the
feature extractor and RPN frozen; the genotype is the argmax of alpha.

This is the **first-order** approximation of DARTS (Liu et al., 2019): the
alpha gradient is taken at the current w, without the unrolled second-order
term. The paper does not say which order it used; the first order is what
fits in memory for a detector.
"""
import contextlib
import copy
import logging
import os.path as osp
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.dist import broadcast_object_list, is_main_process
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict
from mmengine.runner import EpochBasedTrainLoop
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import LOOPS

from ..models.alb_cell import Genotypes
from .genotype import (check_genotypes, derive_genotypes, dump_genotypes,
                       find_search_heads, format_genotypes, the_search_head)
from .random_search import RandomSearchMixin, sample_genotypes, sampled
from .search_optim_constructor import DEFAULT_ARCH_KEY

STRATEGIES = ('differentiable', 'random')


@LOOPS.register_module()
class ALBSearchLoop(RandomSearchMixin, EpochBasedTrainLoop):
    """Epoch-based loop that alternates alpha and weight updates.

    ``train_dataloader`` is split by :class:`SearchSplitDataset` into the
    ``'weight'`` half (the loop's :attr:`dataloader`: an epoch is one pass
    over it) and the ``'arch'`` half (:attr:`arch_dataloader`, cycled
    alongside). Each iteration runs an architecture step
    (``model.train_step(arch_batch, optim_wrapper['arch'])``, the network
    weights temporarily ``requires_grad=False``: first-order DARTS), then a
    weight step (``optim_wrapper['weight']``, alpha temporarily frozen),
    each through its wrapper of the :class:`OptimWrapperDict` of
    :class:`ALBSearchOptimWrapperConstructor`. The arch step's losses are
    logged with the prefix ``arch_``.

    ``frozen_modules`` (initialised from ``load_from``, the baseline) are
    frozen when the loop is built, before the optimizers: ``requires_grad``
    off, their BatchNorm layers in eval mode.

    After every epoch the genotype derived by the cells' ``genotype()`` is
    logged and written to ``{work_dir}/genotypes/epoch_{k}.py``; at the end
    to ``{work_dir}/genotype.py``, a config snippet ``genotypes = dict(...)``
    (see :mod:`mmlesion.methods.elixirnet.nas.genotype`).

    For distributed runs set ``find_unused_parameters = True`` in the config
    (or ``model_wrapper_cfg=dict(type='MMDistributedDataParallel',
    find_unused_parameters=True)``): each step leaves one parameter group
    without gradient.

    **Random strategy** (``strategy='random'``; ElixirNet Table 6, "random
    ALB"): Li and Talwalkar's random search with weight sharing under the
    differentiable search's budget (:mod:`mmlesion.methods.elixirnet.nas.random_search`,
    :meth:`~.RandomSearchMixin.select_random_genotypes`): one weight step
    per iteration with a genotype drawn uniformly, alpha never stepped;
    this run's draws are kept in :attr:`sampled_genotypes`.

    Args:
        runner (Runner): the runner.
        dataloader (dict): the ``train_dataloader`` config (its dataset is
            wrapped in :class:`SearchSplitDataset` twice).
        max_epochs (int): search epochs (passes over the weight half).
        split_seed (int): seed of the split. Defaults to 0.
        split_ratio (float): fraction of the data in the weight half.
            Defaults to 0.5.
        split_group_key (str, optional): data_info key kept within one half
            (e.g. ``'patient_id'``). Defaults to None (split images).
        frozen_modules (Sequence[str]): detector attributes to freeze.
            Defaults to ``('backbone', 'neck', 'rpn_head')``; missing
            attributes (a detector without neck) are skipped.
        arch_start_epoch (int): epochs of weight-only warm-up before the
            alpha updates start. Defaults to 0 (the paper gives none).
        weight_optim (str): key of the weight wrapper. Defaults to
            ``'weight'``.
        arch_optim (str): key of the alpha wrapper. Defaults to ``'arch'``.
        genotype_file (str): file name of the final snippet in the work dir.
            Defaults to ``'genotype.py'``.
        strategy (str): ``'differentiable'`` (the paper's, first-order
            DARTS) or ``'random'`` (random search with weight sharing, Table
            6 "random ALB"). Defaults to ``'differentiable'``.
        num_candidates (int): random strategy: genotypes ranked at the end.
            Defaults to 1000 (Li and Talwalkar).
        candidate_batches (int): random strategy: arch-half batches per
            rank each candidate is scored on. Defaults to 10.
        num_finalists (int): random strategy: best candidates scored again
            on ``finalist_batches``; 0 keeps the best. Defaults to 10.
        finalist_batches (int, optional): random strategy: batches for the
            finalists; None: the whole arch half. Defaults to None.
        exclude_ops (Sequence[str]): random strategy: operations never
            drawn. Defaults to none (Li and Talwalkar draw ``none`` too).
        val_begin (int): as :class:`EpochBasedTrainLoop`.
        val_interval (int): as :class:`EpochBasedTrainLoop`.
        dynamic_intervals (list, optional): as :class:`EpochBasedTrainLoop`.
    """

    def __init__(
            self,
            runner,
            dataloader: dict,
            max_epochs: int,
            split_seed: int = 0,
            split_ratio: float = 0.5,
            split_group_key: Optional[str] = None,
            frozen_modules: Sequence[str] = ('backbone', 'neck', 'rpn_head'),
            arch_start_epoch: int = 0,
            weight_optim: str = 'weight',
            arch_optim: str = 'arch',
            genotype_file: str = 'genotype.py',
            strategy: str = 'differentiable',
            num_candidates: int = 1000,
            candidate_batches: int = 10,
            num_finalists: int = 10,
            finalist_batches: Optional[int] = None,
            exclude_ops: Sequence[str] = (),
            val_begin: int = 1,
            val_interval: int = 1,
            dynamic_intervals: Optional[List[Tuple[int, int]]] = None) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f'ALBSearchLoop: strategy must be one of '
                             f'{STRATEGIES}, got {strategy!r}')
        if strategy == 'random' and (
                int(num_candidates) < 1 or int(candidate_batches) < 1
                or int(num_finalists) < 0 or
            (finalist_batches is not None and int(finalist_batches) < 1)):
            raise ValueError(
                'ALBSearchLoop (random): num_candidates and '
                'candidate_batches must be >= 1, num_finalists >= 0, '
                'finalist_batches None or >= 1; got '
                f'{num_candidates}, {candidate_batches}, {num_finalists}, '
                f'{finalist_batches}')
        if not isinstance(dataloader, dict):  # a DataLoader too
            raise TypeError(
                'ALBSearchLoop needs the train_dataloader as a config dict '
                '(it builds one dataloader per half of the data), got '
                f'{type(dataloader)}')
        weight_cfg, arch_cfg = self.split_dataloader_cfg(
            dataloader, split_seed, split_ratio, split_group_key)
        super().__init__(runner, weight_cfg, max_epochs, val_begin,
                         val_interval, dynamic_intervals)
        diff_rank_seed = runner._randomness_cfg.get('diff_rank_seed', False)
        self.arch_dataloader = runner.build_dataloader(
            arch_cfg, seed=runner.seed, diff_rank_seed=diff_rank_seed)
        self.arch_start_epoch = int(arch_start_epoch)
        self.weight_optim = weight_optim
        self.arch_optim = arch_optim
        self.genotype_file = genotype_file
        self._arch_iter: Optional[Iterator] = None
        self._arch_epoch = 0
        self.strategy = strategy
        self.num_candidates = int(num_candidates)
        self.candidate_batches = int(candidate_batches)
        self.num_finalists = int(num_finalists)
        self.finalist_batches = None if finalist_batches is None \
            else int(finalist_batches)
        self.exclude_ops = tuple(exclude_ops)
        self.sampled_genotypes: List[Genotypes] = []
        self.frozen_modules = self._freeze(frozen_modules)
        if strategy == 'random':
            seed = [runner.seed]
            broadcast_object_list(seed)  # rank 0's seed: same draws on all
            self.sample_seed = int(seed[0])
            head = self.search_head
            sample_genotypes(np.random.default_rng(0), head.op_names,
                             head.num_branches, self.exclude_ops)  # checks

    @staticmethod
    def split_dataloader_cfg(
            dataloader: dict,
            seed: int = 0,
            ratio: float = 0.5,
            group_key: Optional[str] = None) -> Tuple[dict, dict]:
        """Return the weight-half and arch-half dataloader configs.

        Args:
            dataloader (dict): a ``train_dataloader`` config.
            seed (int): split seed.
            ratio (float): fraction of the weight half.
            group_key (str, optional): data_info key kept within one half.

        Returns:
            tuple[dict, dict]: the two configs; their datasets are
            ``SearchSplitDataset`` over the original dataset config.
        """
        if 'dataset' not in dataloader:
            raise ValueError('ALBSearchLoop: train_dataloader has no dataset')
        dataset = dataloader['dataset']
        if isinstance(dataset,
                      dict) and dataset.get('type') == 'SearchSplitDataset':
            raise ValueError(
                'ALBSearchLoop splits train_dataloader.dataset itself; do '
                'not wrap it in SearchSplitDataset in the config.')
        cfgs = []
        for split in ('weight', 'arch'):
            cfg = copy.deepcopy(dataloader)
            cfg['dataset'] = dict(
                type='SearchSplitDataset', dataset=copy.deepcopy(dataset),
                split=split, seed=seed, ratio=ratio, group_key=group_key)
            cfgs.append(cfg)
        return cfgs[0], cfgs[1]

    @property
    def detector(self) -> nn.Module:
        """nn.Module: the runner's model without its wrapper."""
        model = self.runner.model
        return model.module if is_model_wrapper(model) else model

    def _freeze(self, names: Sequence[str]) -> List[nn.Module]:
        """Turn off gradients of the named submodules of the detector."""
        frozen = []
        for name in names:
            module = getattr(self.detector, name, None)
            if module is None:
                print_log(f'ALBSearchLoop: the detector has no `{name}`; '
                          'nothing to freeze there.', logger='current',
                          level=logging.WARNING)
                continue
            module.requires_grad_(False)
            frozen.append(module)
        what = (f'first-order DARTS with arch updates from epoch '
                f'{self.arch_start_epoch}' if self.strategy == 'differentiable'
                else 'random search with weight sharing (no alpha steps)')
        print_log(f'ALBSearchLoop: frozen {list(names)}; {what}.',
                  logger='current')
        return frozen

    @property
    def search_head(self) -> nn.Module:
        """nn.Module: the detector's single search-mode ALB head."""
        return the_search_head(self.detector, 'ALBSearchLoop')

    def run(self) -> nn.Module:
        """Search, then write the final genotype snippet."""
        model = super().run()
        if self.strategy == 'random':
            self.export_genotypes(self.genotype_file,
                                  genotypes=self.select_random_genotypes())
        else:
            self.export_genotypes(self.genotype_file, log_genotypes=False)
        return model

    def run_epoch(self) -> None:
        """One pass over the weight half, alternating with arch batches."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        for module in self.frozen_modules:  # frozen norms keep statistics
            for m in module.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        self._arch_iter = None
        for idx, data_batch in enumerate(self.dataloader):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
        if self.strategy == 'differentiable':  # alpha means nothing else
            self.export_genotypes(
                osp.join('genotypes', f'epoch_{self._epoch}.py'))

    def run_iter(self, idx: int, data_batch: Sequence[dict]) -> None:
        """An arch step on an arch-half batch, then a weight step."""
        self.runner.call_hook('before_train_iter', batch_idx=idx,
                              data_batch=data_batch)
        optim_wrapper = self.runner.optim_wrapper
        needed = {self.weight_optim} if self.strategy == 'random' \
            else {self.weight_optim, self.arch_optim}
        if not isinstance(optim_wrapper, OptimWrapperDict) or \
                not needed <= set(optim_wrapper.keys()):
            raise TypeError(
                'ALBSearchLoop needs an OptimWrapperDict with keys '
                f'{self.weight_optim!r} and {self.arch_optim!r} (use '
                "constructor='ALBSearchOptimWrapperConstructor'), got "
                f'{type(optim_wrapper).__name__}')
        weight_wrapper = optim_wrapper[self.weight_optim]
        if self.strategy == 'random':
            outputs = self._random_step(data_batch, weight_wrapper)
        else:
            arch_wrapper = optim_wrapper[self.arch_optim]
            outputs: Dict[str, torch.Tensor] = {}
            if self._epoch >= self.arch_start_epoch:
                arch_batch = self._next_arch_batch()
                with _grad_disabled(_params(weight_wrapper)):
                    arch_vars = self.runner.model.train_step(
                        arch_batch, optim_wrapper=arch_wrapper)
                outputs.update(
                    {f'arch_{k}': v for k, v in arch_vars.items()})
            with _grad_disabled(_params(arch_wrapper)):
                outputs.update(self.runner.model.train_step(
                    data_batch, optim_wrapper=weight_wrapper))
        self.runner.call_hook('after_train_iter', batch_idx=idx,
                              data_batch=data_batch, outputs=outputs)
        self._iter += 1

    def _random_step(self, data_batch: Sequence[dict],
                     weight_wrapper) -> Dict[str, torch.Tensor]:
        """Random strategy: a weight step with a freshly drawn genotype."""
        head = self.search_head
        genotypes = self.sample_training_genotypes(self._iter)
        self.sampled_genotypes.append(genotypes)
        arch_params = head.arch_parameters() if hasattr(
            head, 'arch_parameters') else []
        with _grad_disabled(arch_params), sampled(head, genotypes):
            return self.runner.model.train_step(
                data_batch, optim_wrapper=weight_wrapper)

    def _next_arch_batch(self) -> Sequence[dict]:
        """Next batch of the arch half, restarting it (its sampler at the
        next epoch) when exhausted."""
        batch = None if self._arch_iter is None else next(self._arch_iter,
                                                          None)
        if batch is None:
            self._set_arch_sampler_epoch(self._arch_epoch)
            self._arch_epoch += 1
            self._arch_iter = iter(self.arch_dataloader)
            batch = next(self._arch_iter)
        return batch

    def _set_arch_sampler_epoch(self, epoch: int) -> None:
        batch_sampler = getattr(self.arch_dataloader, 'batch_sampler', None)
        for sampler in (getattr(self.arch_dataloader, 'sampler', None),
                        getattr(batch_sampler, 'sampler', None)):
            if hasattr(sampler, 'set_epoch'):
                sampler.set_epoch(epoch)
                return

    def export_genotypes(
            self,
            rel_path: str,
            log_genotypes: bool = True,
            genotypes: Optional[Genotypes] = None) -> Optional[str]:
        """Derive the genotype, log it and write it under the work dir.

        Args:
            rel_path (str): file path relative to ``runner.work_dir``.
            log_genotypes (bool): log the genotypes' text. Defaults to True.
            genotypes (dict, optional): the genotypes to write (the random
                strategy's selection); None derives them from alpha.

        Returns:
            str | None: the written path (None on non-main processes).
        """
        head = self.search_head
        if genotypes is None:
            genotypes = derive_genotypes(self.detector)
            how = 'derived by ALBSearchLoop (first-order DARTS, argmax)'
            summary = self._alpha_summary()
        else:
            genotypes = check_genotypes(genotypes, head.op_names,
                                        head.num_branches)
            how = ('selected by ALBSearchLoop (random search with weight '
                   'sharing, Li and Talwalkar 2019)')
            summary = ''
        if log_genotypes:
            print_log(
                f'ALB genotype after epoch {self._epoch}:\n'
                f'{format_genotypes(genotypes)}{summary}',
                logger='current')
        if not is_main_process():
            return None
        path = osp.join(self.runner.work_dir, rel_path)
        dump_genotypes(genotypes, path, (
            f'ALB genotype {how} after epoch {self._epoch}/'
            f'{self._max_epochs} (experiment {self.runner.experiment_name}).'
        ), head.op_names)
        print_log(f'ALB genotype written to {path}', logger='current')
        return path

    def _alpha_summary(self) -> str:
        """``softmax(alpha)`` of the searched head, one row per edge."""
        lines = []
        for name, head in find_search_heads(self.detector).items():
            ops = ', '.join(getattr(head, 'op_names', ()))
            for pname, param in head.named_parameters():
                if DEFAULT_ARCH_KEY not in pname:
                    continue
                lines.append(f'softmax({name}.{pname}), rows = edges, '
                             f'columns = {ops}:')
                weights = param.detach().float().softmax(-1).cpu()
                for e, row in enumerate(weights.tolist()):
                    lines.append(f'  edge {e}: ' + ' '.join(f'{w:.3f}'
                                                            for w in row))
        return '\n'.join(lines)


def _params(optim_wrapper) -> List[nn.Parameter]:
    """All parameters of an optimizer wrapper's param groups."""
    return [p for group in optim_wrapper.optimizer.param_groups
            for p in group['params']]


@contextlib.contextmanager
def _grad_disabled(params: Iterable[nn.Parameter]):
    """Turn off ``requires_grad`` of the other optimizer's ``params``.

    Only the stepping optimizer's parameters then receive gradients: no
    stale gradient of the other group leaks into its next step, and no time
    is spent computing it.
    """
    frozen = [p for p in params if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)
