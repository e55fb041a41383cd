# Copyright (c) mmlesion contributors. All rights reserved.
"""The DeepLesion dataset in its official release layout."""
import logging
import os
import os.path as osp
from collections import Counter, OrderedDict
from typing import Dict, List, Optional, Set, Union

import numpy as np
from mmengine.logging import print_log
from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS

from .dl_info import (COARSE_LESION_TYPES, SPLITS, DLInfoRecord, mmdet_box,
                      parse_dl_info)

_SPLIT_NAMES = {value: name for name, value in SPLITS.items()}

#: ``metainfo['box_convention']``: the instances' ``x2, y2`` are one past
#: the lesion's last pixel (mmdet's), not that pixel (DL_info.csv's).
BOX_CONVENTION = 'exclusive'

#: Palette of the 8 coarse lesion types (one colour per type).
_TYPE_PALETTE = [(220, 20, 60), (119, 11, 32), (0, 0, 142), (0, 0, 230),
                 (106, 0, 228), (0, 60, 100), (0, 80, 100), (0, 0, 70)]


@DATASETS.register_module()
class DeepLesionDataset(BaseDetDataset):
    """DeepLesion (Yan et al., JMI 2018), read from the release as is.

    The layout is the official one::

        data_root/
            DL_info.csv                       # ann_file, 18 columns
            Images_png/000001_01_01/109.png   # 16-bit, HU = value - 32768

    One sample is one **key slice** with all its lesions: the rows of
    ``DL_info.csv`` are grouped by ``File_name`` (the protocol of the
    papers, e.g. ElixirNet Sec. 4 and Improved RetinaNet Sec. 3.1, and of
    the official evaluation, ``docs/protocols.md`` §1). A data_info is::

        dict(img_path=<abs path of the key slice png>, img_id=<int>,
             file_name='000002_01_01_162.png',
             series_dir=<abs path of Images_png/000002_01_01>,
             key_slice=162, slice_range=(156, 168), slice_interval=5.0,
             spacing=0.859375, height=512, width=512,
             patient_id=2, study_id=1, series_id=1,
             instances=[dict(bbox=[x1, y1, x2 + 1, y2 + 1], bbox_label=0,
                             ignore_flag=0, recist=[[x, y]] * 4,
                             diameters_px=[long, short],
                             diameters_mm=[long, short], lesion_type=2,
                             normalized_location=[x, y, z], noisy=False,
                             row=2)])

    Coordinates are 0-based pixels (:mod:`.dl_info`); boxes are mmdet's
    (:func:`~.dl_info.mmdet_box`, the one place the conversion is made),
    hence ``metainfo['box_convention'] = 'exclusive'``, which
    :class:`~mmlesion.evaluation.FROCMetric` reads. ``img_id`` is the order
    of first appearance of the key slice in ``ann_file`` (whatever
    ``split``); ``slice_range`` is the union of the lesions' ranges. A box
    one pixel wide or tall gets ``ignore_flag=1``.

    Args:
        ann_file (str): the DL_info.csv, relative to ``data_root`` unless
            absolute. Defaults to ``'DL_info.csv'``.
        data_prefix (dict): ``img`` = folder of the series folders.
            Defaults to ``dict(img='Images_png/')``.
        split (str | int | None): ``'train'``/``'val'``/``'test'`` or
            ``Train_Val_Test`` value 1/2/3; None keeps all rows.
        drop_noisy (bool): drop lesions with ``Possibly_noisy=1`` (an image
            left without lesions disappears, as in the official
            evaluation). Defaults to True.
        label_mode (str): ``'lesion'`` (default: one class, label 0) or
            ``'coarse_type'`` (the 8 coarse types of
            :data:`COARSE_LESION_TYPES`, ``bbox_label = type - 1``; type -1,
            the whole official training split, as ``unknown_type`` says).
        unknown_type (str): lesions of type -1 in ``'coarse_type'`` mode:
            ``'ignore'`` (``bbox_label=-1``, ``ignore_flag=1``: no loss sees
            them), ``'drop'`` or ``'error'`` (ValueError naming the row).
        skip_missing_key_slices (bool): skip (and count in the log) images
            whose key-slice PNG is missing instead of raising
            FileNotFoundError naming the file and CSV row. Defaults to False.
        duplicate_rows (str): ``'error'`` (default) or ``'drop'``, as
            :func:`~mmlesion.datasets.parse_dl_info`.
        box_tolerance (float | None): pixels by which boxes and RECIST
            points may reach past ``Image_size`` (three official val/test
            rows lie up to 6.6 px past it); farther raises ValueError
            naming file, row and field. None: no check. Defaults to 10.
        metainfo (dict, optional): defaults to the classes of
            ``label_mode``.
        filter_cfg (dict, optional): as mmdet's CocoDataset
            (``filter_empty_gt``, ``min_size``), used when not
            ``test_mode``.
        **kwargs: other arguments of :class:`mmdet.datasets.BaseDetDataset`
            (a ``pipeline`` with mmdet's 8-bit ``LoadImageFromFile`` is
            refused).
    """

    METAINFO = {'classes': ('lesion', ), 'palette': [(220, 20, 60)],
                'box_convention': BOX_CONVENTION}

    def __init__(self,
                 *args,
                 ann_file: str = 'DL_info.csv',
                 data_prefix: dict = dict(img='Images_png/'),
                 split: Union[str, int, None] = None,
                 drop_noisy: bool = True,
                 label_mode: str = 'lesion',
                 unknown_type: str = 'ignore',
                 skip_missing_key_slices: bool = False,
                 duplicate_rows: str = 'error',
                 box_tolerance: Optional[float] = 10.0,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        if label_mode not in ('lesion', 'coarse_type'):
            raise ValueError(f"label_mode must be 'lesion' or "
                             f"'coarse_type', got {label_mode!r}")
        if unknown_type not in ('ignore', 'drop', 'error'):
            raise ValueError(f"unknown_type must be 'ignore', 'drop' or "
                             f"'error', got {unknown_type!r}")
        self._check_pipeline(kwargs.get('pipeline') or [], ann_file)
        self.split = self._split_value(split)
        self.drop_noisy = drop_noisy
        self.label_mode = label_mode
        self.unknown_type = unknown_type
        self.skip_missing_key_slices = skip_missing_key_slices
        self.duplicate_rows = duplicate_rows
        self.box_tolerance = box_tolerance
        if metainfo is None and label_mode == 'coarse_type':
            metainfo = dict(
                classes=COARSE_LESION_TYPES, palette=list(_TYPE_PALETTE))
        num_expected = 1 if label_mode == 'lesion' else len(
            COARSE_LESION_TYPES)
        if metainfo is not None and 'classes' in metainfo and len(
                metainfo['classes']) != num_expected:
            raise ValueError(
                f"label_mode={label_mode!r} needs {num_expected} class "
                f"name(s), got metainfo classes {metainfo['classes']}")
        super().__init__(
            *args,
            ann_file=ann_file,
            data_prefix=data_prefix,
            metainfo=metainfo,
            **kwargs)

    @classmethod
    def _check_pipeline(cls, pipeline: list, ann_file: str) -> None:
        """Refuse mmdet's ``LoadImageFromFile`` in the pipeline (config
        dicts, transform classes or callables)."""
        for index, step in enumerate(pipeline):
            kind = step.get('type', '') if isinstance(step, dict) else step
            if not isinstance(kind, (str, type)):
                kind = type(kind)
            name = kind if isinstance(kind, str) else kind.__name__
            if name.rsplit('.', 1)[-1] == 'LoadImageFromFile':
                raise ValueError(
                    f"{cls.__name__} ({ann_file}): pipeline step {index} is "
                    "mmdet's LoadImageFromFile, which reads the 16-bit "
                    'HU PNGs of DeepLesion as 8-bit pictures without their '
                    "neighbouring slices; use dict(type='LoadDeepLesion"
                    "Slices') (mmlesion.datasets.transforms."
                    'LoadDeepLesionSlices) instead')

    @staticmethod
    def _split_value(split: Union[str, int, None]) -> Optional[int]:
        if split is None:
            return None
        if isinstance(split, str) and split in SPLITS:
            return SPLITS[split]
        if isinstance(split, int) and split in SPLITS.values():
            return split
        raise ValueError(f"split must be 'train', 'val', 'test', 1, 2, 3 or "
                         f'None, got {split!r}')

    def load_data_list(self) -> List[dict]:
        """Parse ``ann_file`` and group its lesions by key slice.

        Returns:
            list[dict]: one data_info per key slice (see the class doc).

        Raises:
            ValueError: malformed CSV field, inconsistent or duplicated rows,
                a box outside the image (file, row, field named), or no
                image at all (file, split and the splits present named).
            FileNotFoundError: a missing key-slice PNG (unless
                ``skip_missing_key_slices``).
        """
        ann_file = self.ann_file
        records = parse_dl_info(ann_file, duplicate_rows=self.duplicate_rows)
        if not records:
            raise ValueError(f'{ann_file}: no lesion row, only a header: '
                             'DeepLesionDataset needs at least one image')
        img_root = self.data_prefix.get('img', '')

        groups: Dict[str, List[DLInfoRecord]] = OrderedDict()
        img_ids: Dict[str, int] = {}
        for rec in records:
            if rec.file_name not in img_ids:
                img_ids[rec.file_name] = len(img_ids)
            if self.split is not None and rec.split != self.split:
                continue
            groups.setdefault(rec.file_name, []).append(rec)
        if not groups:
            raise ValueError(
                f'{ann_file}: no row of split {self._split_name()} '
                f'(Train_Val_Test={self.split}); the file has '
                f'{self._splits_present(records)}')

        # one listdir per series folder, dropped right after use
        abs_root = osp.abspath(img_root)
        by_series: Dict[str, List[str]] = {}
        for file_name, recs in groups.items():
            by_series.setdefault(recs[0].series_name, []).append(file_name)
        present: Set[str] = set()
        for name, file_names in by_series.items():
            try:
                listing = set(os.listdir(abs_root + os.sep + name))
            except (FileNotFoundError, NotADirectoryError):
                continue
            present.update(f for f in file_names
                           if groups[f][0].slice_file in listing)

        data_list = []
        num_missing = 0
        for file_name, recs in groups.items():
            first = recs[0]
            series_dir = abs_root + os.sep + first.series_name
            if file_name not in present:
                if self.skip_missing_key_slices:
                    num_missing += 1
                    continue
                raise FileNotFoundError(
                    f"{ann_file}: row {first.row}, field 'File_name': key "
                    f'slice {file_name!r} not found at '
                    f'{osp.join(series_dir, first.slice_file)} (set '
                    'skip_missing_key_slices=True to skip such images)')
            info = self._parse_image(ann_file, file_name, recs, series_dir,
                                     img_ids[file_name])
            if info is not None:
                data_list.append(info)
        if not data_list:
            raise ValueError(
                f'{ann_file}: all {len(groups)} key slices of split '
                f'{self._split_name()} were dropped ({num_missing} with a '
                f'missing PNG under {img_root}; the others had no lesion left '
                f'with drop_noisy={self.drop_noisy}, label_mode='
                f'{self.label_mode!r}, unknown_type={self.unknown_type!r}); '
                f'the file has {self._splits_present(records)}')
        if num_missing:
            print_log(
                f'DeepLesionDataset: skipped {num_missing} of {len(groups)} '
                f'key slices whose PNG is missing under {img_root} '
                f'({ann_file})',
                logger='current',
                level=logging.WARNING)
        return data_list

    def _split_name(self) -> str:
        if self.split is None:
            return 'all (split=None)'
        return repr(_SPLIT_NAMES[self.split])

    @staticmethod
    def _splits_present(records: List[DLInfoRecord]) -> str:
        """E.g. ``"'val' (4889 rows), 'test' (12 rows)"``."""
        counts = Counter(rec.split for rec in records)
        return ', '.join(f'{_SPLIT_NAMES[k]!r} ({counts[k]} rows)'
                         for k in sorted(counts))

    def _parse_image(self, ann_file: str, file_name: str,
                     recs: List[DLInfoRecord], series_dir: str,
                     img_id: int) -> Optional[dict]:
        """Build the data_info of one key slice from its rows."""
        first = recs[0]
        for rec in recs[1:]:
            for field, attr in (('Spacing_mm_px_', 'spacing'),
                                ('Image_size', 'image_size'),
                                ('Train_Val_Test', 'split')):
                if getattr(rec, attr) != getattr(first, attr):
                    raise ValueError(
                        f"{ann_file}: row {rec.row}, field '{field}': "
                        f'{getattr(rec, attr)} differs from row {first.row} '
                        f'({getattr(first, attr)}) of the same key slice '
                        f'{file_name!r}')
        height, width = first.image_size
        instances = []
        for rec in recs:
            if self.drop_noisy and rec.noisy:
                continue
            self._check_inside(ann_file, rec, height, width)
            bbox = mmdet_box(rec.bbox)
            label, ignore = 0, int(bbox[2] - bbox[0] <= 1
                                   or bbox[3] - bbox[1] <= 1)
            if self.label_mode == 'coarse_type':
                if rec.lesion_type == -1:
                    if self.unknown_type == 'drop':
                        continue
                    if self.unknown_type == 'error':
                        raise ValueError(
                            f"{ann_file}: row {rec.row}, field "
                            "'Coarse_lesion_type': unknown type (-1) with "
                            "label_mode='coarse_type' (use unknown_type="
                            "'ignore' or 'drop')")
                    label, ignore = -1, 1
                else:
                    label = rec.lesion_type - 1
            instances.append(
                dict(
                    bbox=bbox,
                    bbox_label=label,
                    ignore_flag=ignore,
                    recist=[list(p) for p in rec.recist],
                    diameters_px=list(rec.diameters_px),
                    diameters_mm=list(rec.diameters_mm),
                    lesion_type=rec.lesion_type,
                    normalized_location=list(rec.normalized_location),
                    noisy=rec.noisy,
                    row=rec.row))
        if not instances:
            return None
        return dict(
            img_path=series_dir + os.sep + first.slice_file,
            img_id=img_id,
            file_name=file_name,
            series_dir=series_dir,
            key_slice=first.key_slice_index,
            slice_range=(min(r.slice_range[0] for r in recs),
                         max(r.slice_range[1] for r in recs)),
            slice_interval=first.slice_interval,
            spacing=first.pixel_spacing,
            height=height,
            width=width,
            patient_id=first.patient_index,
            study_id=first.study_index,
            series_id=first.series_id,
            instances=instances)

    def _check_inside(self, ann_file: str, rec: DLInfoRecord, height: int,
                      width: int) -> None:
        """Raise if a box or RECIST point lies outside the image."""
        if self.box_tolerance is None:
            return
        tol = self.box_tolerance
        x1, y1, x2, y2 = rec.bbox
        if (x1 < -tol or y1 < -tol or x2 > width - 1 + tol
                or y2 > height - 1 + tol or x1 > width - 1 or y1 > height - 1
                or x2 < 0 or y2 < 0):
            raise ValueError(
                f"{ann_file}: row {rec.row}, field 'Bounding_boxes': box "
                f'{[v + 1 for v in rec.bbox]} (1-based) lies outside the '
                f'{width}x{height} image (Image_size) by more than '
                f'box_tolerance={tol} px')
        for x, y in rec.recist:
            if (x < -tol or y < -tol or x > width - 1 + tol
                    or y > height - 1 + tol):
                raise ValueError(
                    f"{ann_file}: row {rec.row}, field "
                    f"'Measurement_coordinates': point ({x + 1}, {y + 1}) "
                    f'(1-based) lies outside the {width}x{height} image '
                    f'(Image_size) by more than box_tolerance={tol} px')

    def filter_data(self) -> List[dict]:
        """The data_infos ``filter_cfg`` keeps (all in test mode)."""
        if self.test_mode or self.filter_cfg is None:
            return self.data_list
        filter_empty_gt = self.filter_cfg.get('filter_empty_gt', False)
        min_size = self.filter_cfg.get('min_size', 0)
        kept = []
        for info in self.data_list:
            if filter_empty_gt and not any(
                    not ins['ignore_flag'] for ins in info['instances']):
                continue
            if min(info['width'], info['height']) < min_size:
                continue
            kept.append(info)
        if self.data_list and not kept:
            raise ValueError(
                f'{self.ann_file}: filter_cfg={self.filter_cfg} removed all '
                f'{len(self.data_list)} images of split {self._split_name()}')
        if len(kept) < len(self.data_list):
            print_log(
                f'DeepLesionDataset: filter_cfg={self.filter_cfg} removed '
                f'{len(self.data_list) - len(kept)} of {len(self.data_list)} '
                'images',
                logger='current',
                level=logging.INFO)
        return kept

    def get_cat_ids(self, idx: int) -> List[int]:
        """Labels of the non-ignored lesions of image ``idx``."""
        return [
            ins['bbox_label'] for ins in self.get_data_info(idx)['instances']
            if not ins['ignore_flag']
        ]

    def _serialize_data(self):
        """Serialize ``data_list``, also an empty one (mmengine's fails on
        it; :meth:`full_init` then raises its clear error)."""
        if not self.data_list:
            return np.zeros(0, dtype=np.uint8), np.zeros(0, dtype=np.int64)
        return super()._serialize_data()

    def full_init(self) -> None:
        """Load, filter and subset the data; refuse an empty result (e.g.
        after ``indices=0``; the other causes are named earlier)."""
        if self._fully_initialized:
            return
        super().full_init()
        if len(self) == 0:
            raise ValueError(
                f'{self.ann_file}: DeepLesionDataset of split '
                f'{self._split_name()} is empty after indices='
                f'{self._indices!r}')
