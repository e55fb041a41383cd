# Copyright (c) mmlesion contributors. All rights reserved.
"""CT volumes with 3D lesion boxes from the common annotation file, and
their k-fold cross-validation splits (LUNA16's 10 subsets)."""
import hashlib
import re
from typing import List, Optional, Union

from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS

from .annotation_file import load_annotation_file, resolve_volume_file
from .scan_switches import ScanChecks

_SUBSET_RE = re.compile(r'(?:^|[/\\])subset(\d+)(?:[/\\]|$)')


@DATASETS.register_module()
class CTVolumeDataset(BaseDetDataset):
    """Whole CT scans with 3D boxes (LUNA16, KiTS19, LiTS, NIH-LN, ...).

    Reads the common annotation file (:mod:`mmlesion.datasets.volumes.
    annotation_file`); one sample is one scan, loaded by
    :class:`~mmlesion.datasets.transforms.LoadCTVolume`. A data_info is::

        dict(img_path=<abs path of the scan (file or DICOM folder)>,
             img_id=<id>, series_uid=<str or None>,
             spacing_zyx=(dz, dy, dx), origin_xyz=(x0, y0, z0),
             direction=<9 floats>, shape_zyx=(z, y, x),
             scan_checks=<ScanChecks, for LoadCTVolume>,
             instances=[dict(bbox=[x1, y1, z1, x2, y2, z2], bbox_label=0,
                             ignore_flag=0, center_world=[x, y, z],
                             diameter_mm=5.6)])

    plus ``lesion_type`` in the instances whose annotation carries one.
    Boxes are in continuous voxels of the scan as ``load_ct_volume``
    returns it; findings marked ``ignore`` get ``ignore_flag=1``.

    Args:
        ann_file (str): the JSON, relative to ``data_root`` unless absolute.
        data_prefix (dict): ``img`` = folder the scans' relative ``file``
            paths start from; empty (default) = the JSON's folder.
        metainfo (dict, optional): defaults to the file's
            ``metainfo.classes``; given ``classes`` must have the same
            number of names.
        filter_cfg (dict, optional): ``filter_empty_gt=True`` drops scans
            without any non-ignored box (only when not ``test_mode``).
        crops_per_scan (int): how many times every scan is listed per
            epoch (each time the training pipeline draws a new random crop
            from it); must be 1 in ``test_mode``. Defaults to 1. The LUNA16
            configs use 6: lung-cropped scans are "6 ~ 8 times" a crop
            (3D Aggregated Faster R-CNN, Sec. IV-A), so an epoch sees about
            every scan's volume once.
        scan_checks (dict | ScanChecks, optional): the input checks relaxed
            for this dataset's scans (:class:`~.scan_switches.ScanChecks`,
            e.g. ``dict(allow_outside_data=True)``; the tools'
            ``--force-ct`` and the like set it): the scans' paths are
            checked with it and every data_info carries it to
            :class:`~mmlesion.datasets.transforms.LoadCTVolume`.
        **kwargs: other arguments of :class:`mmdet.datasets.BaseDetDataset`.
    """

    METAINFO: dict = {'classes': None}

    def __init__(self,
                 *args,
                 ann_file: str = '',
                 data_prefix: dict = dict(img=''),
                 metainfo: Optional[dict] = None,
                 crops_per_scan: int = 1,
                 scan_checks: Union[None, dict, ScanChecks] = None,
                 **kwargs) -> None:
        self.scan_checks = ScanChecks.of(scan_checks)
        if isinstance(crops_per_scan, bool) or not isinstance(
                crops_per_scan, int) or crops_per_scan < 1:
            raise ValueError(f'crops_per_scan must be an int >= 1, got '
                             f'{crops_per_scan!r}')
        if crops_per_scan != 1 and kwargs.get('test_mode', False):
            raise ValueError(f'crops_per_scan={crops_per_scan} in test_mode '
                             f'would evaluate every scan {crops_per_scan} '
                             f'times; use 1')
        self.crops_per_scan = crops_per_scan
        # mmengine joins an empty prefix with data_root; the format says
        # relative paths start from the JSON's folder unless a prefix is set
        self._files_root_given = bool(data_prefix.get('img'))
        super().__init__(
            *args,
            ann_file=ann_file,
            data_prefix=data_prefix,
            metainfo=metainfo,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read the annotation file into one data_info per scan.

        Returns:
            list[dict]: see the class doc.

        Raises:
            ValueError: naming the file, volume and field of a malformed
                entry, or classes that disagree with ``metainfo``.
        """
        data = load_annotation_file(self.ann_file)
        classes = list(data.metainfo['classes'])
        given = self._metainfo.get('classes')
        if given is None:
            self._metainfo['classes'] = tuple(classes)
        elif len(given) != len(classes):
            raise ValueError(
                f'{self.ann_file}: metainfo.classes {classes} and the '
                f'dataset classes {list(given)} differ in length')
        self._metainfo.setdefault('dataset', data.metainfo.get('dataset'))
        root = self.data_prefix.get('img') if self._files_root_given \
            else None
        data_list = []
        for vol in data.volumes:
            instances = []
            for ann in vol['annotations']:
                instances.append(
                    dict(
                        bbox=[float(v) for v in ann['bbox']],
                        bbox_label=int(ann.get('label', 0)),
                        ignore_flag=int(bool(ann.get('ignore', False))),
                        center_world=ann.get('center_world'),
                        diameter_mm=float(ann.get('diameter_mm', -1))))
                if ann.get('lesion_type') is not None:  # DeepLesion as 3D
                    instances[-1]['lesion_type'] = int(ann['lesion_type'])
            data_list.append(
                dict(
                    img_path=resolve_volume_file(
                        self.ann_file, vol['file'], root,
                        allow_outside=self.scan_checks.allow_outside_data,
                        data_root=self.data_root or None),
                    scan_checks=self.scan_checks,
                    img_id=vol['id'],
                    series_uid=vol.get('series_uid'),
                    spacing_zyx=tuple(vol['spacing_zyx']),
                    origin_xyz=tuple(vol['origin_xyz']),
                    direction=tuple(vol['direction']),
                    shape_zyx=tuple(int(v) for v in vol['shape_zyx']),
                    instances=instances))
        return data_list

    def filter_data(self) -> List[dict]:
        """Drop scans without non-ignored boxes if ``filter_empty_gt``,
        then list the scans ``crops_per_scan`` times."""
        data_list = self.data_list
        if not self.test_mode and self.filter_cfg and self.filter_cfg.get(
                'filter_empty_gt', False):
            data_list = [
                info for info in data_list if any(
                    not ins['ignore_flag'] for ins in info['instances'])
            ]
        return data_list * self.crops_per_scan


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
