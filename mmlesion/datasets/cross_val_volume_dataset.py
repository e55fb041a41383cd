# Copyright (c) mmlesion contributors. All rights reserved.
"""K-fold cross-validation splits of a CT volume dataset (LUNA16's 10
subsets)."""
import hashlib
import re
from typing import List, Optional

from mmdet.registry import DATASETS
from .volumes.dataset import CTVolumeDataset

_SUBSET_RE = re.compile(r'(?:^|[/\\])subset(\d+)(?:[/\\]|$)')


def volume_fold(info: dict, num_folds: int, fold_source: str) -> int:
    """Fold of one scan.

    Args:
        info (dict): a ``CTVolumeDataset`` data_info.
        num_folds (int): number of folds.
        fold_source (str): ``'subset'``: the ``subsetN`` folder of the scan's
            path (LUNA16's official 10 folds); ``'hash'``: the md5 of the
            scan id modulo ``num_folds`` (a fixed split for sets without
            subsets, e.g. the synthetic demo volumes).

    Returns:
        int: the fold.
    """
    if fold_source == 'hash':
        digest = hashlib.md5(str(info['img_id']).encode()).hexdigest()
        return int(digest[:12], 16) % num_folds
    match = _SUBSET_RE.search(str(info['img_path']))
    if match is None:
        raise ValueError(
            f"{info['img_path']} (scan {info['img_id']}): no subsetN folder "
            f"in the path; LUNA16 folds come from the official subset0 .. "
            f"subset9 layout (or use fold_source='hash')")
    fold = int(match.group(1))
    if fold >= num_folds:
        raise ValueError(f"{info['img_path']}: subset{fold} but only "
                         f"{num_folds} folds")
    return fold


@DATASETS.register_module()
class CrossValVolumeDataset(CTVolumeDataset):
    """``CTVolumeDataset`` restricted to the train or test part of a fold.

    The 3D Aggregated Faster R-CNN paper (Sec. IV) follows the LUNA16
    protocol: 10-fold cross-validation over the official ``subset0`` ..
    ``subset9``; fold ``k`` tests on ``subset k`` and trains on the nine
    others. A config picks the fold with ``fold=k``.

    Args:
        fold (int): the held-out fold.
        split (str): ``'train'`` (all folds but ``fold``) or ``'test'``.
        num_folds (int): number of folds. Defaults to 10.
        fold_source (str): ``'subset'`` or ``'hash'`` (see
            :func:`volume_fold`).
        **kwargs: arguments of :class:`CTVolumeDataset`.
    """

    def __init__(self,
                 *args,
                 fold: int = 0,
                 split: str = 'train',
                 num_folds: int = 10,
                 fold_source: str = 'subset',
                 **kwargs) -> None:
        if split not in ('train', 'test'):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if fold_source not in ('subset', 'hash'):
            raise ValueError(f"fold_source must be 'subset' or 'hash', got "
                             f'{fold_source!r}')
        if not 0 <= fold < num_folds:
            raise ValueError(f'fold {fold} not in [0, {num_folds})')
        self.fold = int(fold)
        self.split = split
        self.num_folds = int(num_folds)
        self.fold_source = fold_source
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Scans of this fold's ``split``."""
        data_list = super().load_data_list()
        held_out = self.split == 'test'
        return [
            info for info in data_list
            if (volume_fold(info, self.num_folds, self.fold_source) ==
                self.fold) == held_out
        ]

    def fold_of(self, idx: int) -> Optional[int]:
        """Fold of the ``idx``-th scan of this dataset."""
        return volume_fold(self.get_data_info(idx), self.num_folds,
                           self.fold_source)
