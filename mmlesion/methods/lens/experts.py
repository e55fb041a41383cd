# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS's model on whole series and scans (Yan et al., TMI 2020, Sec. IV-C):
with one of its training datasets, and the experts it fuses at test time.
"""
import copy
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
from mmengine.config import Config
from mmengine.dataset import BaseDataset

from mmlesion.apis.detector_loader import (DetectorLoadSettings,
                                           init_lesion_detector)


@dataclass(frozen=True)
class LensAndTrainSet:
    """A LENS model with its weights and one of its training datasets
    (:func:`load_lens_and_train_set`).

    Args:
        cfg (Config): the LENS config (options merged).
        model (nn.Module): the model, in eval mode.
        dataset (BaseDataset): the training dataset, as a
            ``DeepLesionDataset`` with the config's test pipeline.
    """
    cfg: Config
    model: torch.nn.Module
    dataset: BaseDataset


def load_lens_and_train_set(config: str,
                            checkpoint: Optional[str],
                            dataset_index: int = 0,
                            cfg_options: Optional[dict] = None
                            ) -> LensAndTrainSet:
    """A LENS model and one of its training datasets (test pipeline).

    Args:
        config (str): a LENS config (its ``train_dataloader.dataset`` a
            ``LENSMultiDataset``).
        checkpoint (str, optional): weights to load.
        dataset_index (int): which dataset of the multi-dataset.
        cfg_options (dict, optional): overrides (``--cfg-options``).

    Returns:
        LensAndTrainSet: the config, the model and the dataset.

    Raises:
        ValueError: the config is not a LENS multi-dataset config or the
            index is out of range.
    """
    from mmdet.registry import DATASETS
    from mmengine.registry import DefaultScope, init_default_scope
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    train_ds = cfg.train_dataloader.dataset
    if train_ds.get('type') != 'LENSMultiDataset':
        raise ValueError(f"{config}: train_dataloader.dataset is a "
                         f"{train_ds.get('type')}, not a LENSMultiDataset")
    n = len(train_ds.datasets)
    if not 0 <= dataset_index < n:
        raise ValueError(f'dataset index {dataset_index} outside [0, {n}) '
                         f'of {config}')
    ds_cfg = copy.deepcopy(train_ds.datasets[dataset_index])
    ds_cfg.update(
        type='DeepLesionDataset',
        test_mode=True,
        pipeline=copy.deepcopy(cfg.test_dataloader.dataset.pipeline))
    for key in ('mined_ann_file', 'use_negatives'):
        ds_cfg.pop(key, None)
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(ds_cfg)
    model = init_lesion_detector(
        cfg, checkpoint,
        DetectorLoadSettings(
            device='cuda' if torch.cuda.is_available() else 'cpu')).model
    return LensAndTrainSet(cfg, model, dataset)


def set_lens_experts(cfg, experts: Optional[List[int]],
                     cfg_name: str = '<config>') -> None:
    """Choose the experts a LENS model fuses at test time (Sec. IV-C;
    ``model.test_cfg.expert_fusion.experts``, Table I rows (b) / (c)).

    Args:
        cfg (Config): the detector's config, changed in place.
        experts (list[int], optional): expert (dataset) indices; None
            leaves the config as it is.
        cfg_name (str): named in errors.

    Raises:
        ValueError: the model is not a LENS, the list is empty or an index
            is out of range (naming the config and its number of experts).
    """
    if experts is None:
        return
    model_type = cfg.model.get('type')
    if model_type != 'LENS':
        raise ValueError(f'{cfg_name}: --experts needs a LENS model, the '
                         f'config builds a {model_type}')
    n = int(cfg.model.get('num_datasets', 0))
    names = cfg.model.get('dataset_names') or [
        f'dataset{i}' for i in range(n)]
    bad = [e for e in experts if not 0 <= int(e) < n]
    if not experts or bad:
        raise ValueError(
            f'{cfg_name}: expert indices {list(experts)} invalid: the model '
            f'has {n} experts, 0..{n - 1} ({", ".join(names)})')
    cfg.merge_from_dict(
        {'model.test_cfg.expert_fusion.experts': [int(e) for e in experts]})


@dataclass
class LensExperts:
    """The experts a LENS model fuses, as a whole-scan run's
    :class:`~mmlesion.apis.whole_scan.settings.ModelAdjustment`
    (``--experts``).

    Args:
        experts (list[int]): expert (dataset) indices.
    """
    experts: List[int]

    def adjust_config(self, cfg, cfg_name: str = '<config>') -> None:
        """:func:`set_lens_experts` (raises its ``ValueError``)."""
        set_lens_experts(cfg, self.experts, cfg_name)

    def adjust_model(self, model: torch.nn.Module) -> None:
        """Set them on a built LENS model's ``test_cfg``."""
        model.test_cfg.expert_fusion.experts = list(self.experts)

    def record(self) -> Dict[str, List[int]]:
        """``experts``: the indices."""
        return dict(experts=[int(e) for e in self.experts])
