# Copyright (c) mmlesion contributors. All rights reserved.
"""Record in every checkpoint the slice interval and pixel spacing of the
training data, for whole-scan inference to use by default."""
import logging
from typing import TYPE_CHECKING, Any, List, Mapping, Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmdet.registry import HOOKS

from mmlesion.utils.configs.known_keys import config_values

if TYPE_CHECKING:
    from mmlesion.datasets.transforms.data_convention import DataConvention

#: Training images whose spacing and size are read (evenly spaced).
MAX_IMAGES = 2000


def train_pipeline(cfg: Any) -> Optional[List[dict]]:
    """The first pipeline of a config's ``train_dataloader`` that loads 2.5D
    slices (``LoadDeepLesionSlices``).

    Args:
        cfg (Config | dict): the training config.

    Returns:
        list[dict] | None: the transform dicts, None without one.
    """
    for path, pipeline in config_values(cfg.get('train_dataloader'), ''):
        if path.endswith('.pipeline') and isinstance(
                pipeline, (list, tuple)) and any(
                    isinstance(t, Mapping)
                    and t.get('type') == 'LoadDeepLesionSlices'
                    for t in pipeline):
            return [dict(t) for t in pipeline if isinstance(t, Mapping)]
    return None


def sample_data_infos(dataset: Any,
                      max_images: int = MAX_IMAGES) -> List[Mapping]:
    """Up to ``max_images`` data infos of a dataset, evenly spaced.

    Args:
        dataset (Dataset): the training dataset (built).
        max_images (int): most infos read.

    Returns:
        list[Mapping]: the infos (empty for a dataset without them).
    """
    get = getattr(dataset, 'get_data_info', None)
    if get is None:
        return []
    num = len(dataset)
    step = max(1, -(-num // max(1, max_images)))  # ceil
    return [info for info in (get(i) for i in range(0, num, step))
            if isinstance(info, Mapping)]


def _training_data_convention(cfg: Any, dataset: Any = None,
                              max_images: int = MAX_IMAGES
                              ) -> Optional['DataConvention']:
    """The convention of a 2.5D model's training data: the number of
    slices, their interval (mm) and the pixel spacing (mm/px) the model saw.

    Args:
        cfg (Config | dict): the training config.
        dataset (Dataset, optional): the built training dataset; without it
            only a ``ResampleToSpacing`` tells the pixel spacing.
        max_images (int): training images read (evenly spaced).

    Returns:
        DataConvention | None: None for a config that trains on no 2.5D
        slices.
    """
    from mmlesion.datasets.transforms.data_convention import (
        DEFAULT_INTERVAL_MM, pipeline_convention)
    pipeline = train_pipeline(cfg)
    if pipeline is None:
        return None
    infos = sample_data_infos(dataset, max_images)  # [] without one
    convention = pipeline_convention(pipeline, infos)
    if convention['interval_mm'] is None:
        convention['interval_mm'] = DEFAULT_INTERVAL_MM  # what it read
    return convention


@HOOKS.register_module()
class DataConventionHook(Hook):
    """Write the convention of the training data (read once from its
    images) into every checkpoint's ``meta``, for whole-scan inference to
    resample a scan to; a failure to read it never stops the training.

    Args:
        max_images (int): training images read (evenly spaced). Defaults
            to :data:`MAX_IMAGES`.
    """

    priority = 'NORMAL'

    def __init__(self, max_images: int = MAX_IMAGES) -> None:
        self.max_images = int(max_images)
        self._convention: Optional['DataConvention'] = None
        self._read = False

    def convention(self, runner) -> Optional['DataConvention']:
        """:func:`_training_data_convention` of ``runner`` (read once)."""
        if not self._read:
            self._read = True
            try:
                loader = runner.train_dataloader
                dataset = getattr(loader, 'dataset', None)
                self._convention = _training_data_convention(
                    runner.cfg, dataset, self.max_images)
            except Exception as err:  # never stop a training for it
                print_log(
                    f'DataConventionHook: the training data\'s slice '
                    f'interval and pixel spacing are not recorded '
                    f'({type(err).__name__}: {err})', logger='current',
                    level=logging.WARNING)
        return self._convention

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Write the convention into ``checkpoint['meta']``."""
        from mmlesion.datasets.transforms.data_convention import \
            DATA_CONVENTION_KEY
        convention = self.convention(runner)
        if convention is None:
            return
        meta = checkpoint.get('meta')
        if not isinstance(meta, dict):
            meta = checkpoint['meta'] = {}
        meta[DATA_CONVENTION_KEY] = dict(convention)
