# Copyright (c) mmlesion contributors. All rights reserved.
"""Random 3D crops that favour hard regions: the sampler of one round of
Anchor Based Sampling (3D Aggregated Faster R-CNN, Sec. IV-C)."""
from typing import Dict, Optional, Sequence, Union

import numpy as np
from mmengine.logging import print_log

from mmdet.registry import TRANSFORMS
from mmlesion.structures.ct_geometry import world_to_voxel
from ..volumes.hard_regions import (HARD_REGION_KINDS, HardRegionScan,
                                    index_hard_regions, load_hard_regions)
from .volume_crop import RandomCrop3D


@TRANSFORMS.register_module()
class HardRegionRandomCrop3D(RandomCrop3D):
    """``RandomCrop3D`` that also centres crops on the scan's hard regions.

    Anchor Based Sampling (Sec. IV-C, after Xie [11]): "these hard regions
    will be more focused in the next training round". With probability
    ``hard_prob`` (ours) the crop contains a hard region of the scan
    (``find_hard_regions.py``'s file, looked up by ``img_id`` then
    ``series_uid``), placed as ``RandomCrop3D`` places a lesion. A scan
    absent from the file is cropped as by ``RandomCrop3D`` (warned once); a
    region outside its volume is an error.

    Added keys: those of ``RandomCrop3D`` (``crop_source`` may be
    ``'hard'``), ``hard_region`` when ``'hard'``.

    Args:
        hard_regions_file (str): the JSON written by
            ``find_hard_regions.py``.
        hard_prob (float): probability of a hard-region crop (scans with
            hard regions).
        kinds (Sequence[str]): kinds used: ``'hard_negative'`` (false
            positives) and / or ``'hard_positive'`` (missed or poorly scored
            nodules). Defaults to both.
        crop_size, pos_prob, margin, pad_value: as ``RandomCrop3D``.
    """

    def __init__(self,
                 hard_regions_file: str,
                 hard_prob: float = 0.3,
                 kinds: Sequence[str] = HARD_REGION_KINDS,
                 crop_size: Union[int, Sequence[int]] = 128,
                 pos_prob: float = 0.7,
                 margin: int = 8,
                 pad_value: float = -1024.0) -> None:
        super().__init__(crop_size=crop_size, pos_prob=pos_prob,
                         margin=margin, pad_value=pad_value)
        if not isinstance(hard_regions_file, str) or not hard_regions_file:
            raise ValueError(f'hard_regions_file must be a path, got '
                             f'{hard_regions_file!r}')
        if not 0 <= hard_prob <= 1:
            raise ValueError(f'hard_prob must be in [0, 1], got {hard_prob}')
        kinds = tuple(kinds)
        bad = [k for k in kinds if k not in HARD_REGION_KINDS]
        if bad or not kinds:
            raise ValueError(f'kinds must be a non-empty subset of '
                             f'{list(HARD_REGION_KINDS)}, got {list(kinds)}')
        self.hard_regions_file = hard_regions_file
        self.hard_prob = float(hard_prob)
        self.kinds = kinds
        self._index: Optional[Dict[str, HardRegionScan]] = None
        self._warned = set()

    def _scan_regions(self, results: dict) -> list:
        if self._index is None:
            self._index = index_hard_regions(
                load_hard_regions(self.hard_regions_file))
        for key in ('img_id', 'series_uid'):
            value = results.get(key)
            if value is not None and str(value) in self._index:
                scan = self._index[str(value)]
                return [r for r in scan['regions'] if r['kind'] in self.kinds]
        name = str(results.get('img_id', results.get('img_path')))
        if name not in self._warned:
            self._warned.add(name)
            print_log(
                f'HardRegionRandomCrop3D: scan {name} '
                f"({results.get('img_path')}) is not in "
                f'{self.hard_regions_file}; cropped without hard regions',
                logger='current', level=30)
        return []

    def _sample_centre(self, results: dict, centres_zyx: np.ndarray,
                       ignore: np.ndarray) -> Optional[np.ndarray]:
        regions = self._scan_regions(results)
        if not regions or np.random.rand() >= self.hard_prob:
            return super()._sample_centre(results, centres_zyx, ignore)
        region = regions[np.random.randint(len(regions))]
        for key in ('spacing_zyx', 'origin_xyz'):
            if key not in results:
                raise KeyError(f"{results.get('img_path', '<volume>')}: "
                               f'HardRegionRandomCrop3D needs {key!r} (put '
                               f'LoadCTVolume before it)')
        centre = world_to_voxel(region['center_world'],
                                results['spacing_zyx'], results['origin_xyz'],
                                results.get('direction', np.eye(3)))[0]
        shape = np.asarray(results['img'].shape)
        if np.any(centre < -0.5) or np.any(centre > shape - 0.5):
            raise ValueError(
                f"{self.hard_regions_file}: a {region['kind']} region of "
                f"scan {results.get('img_id')} at world "
                f"{region['center_world']} lies at voxel (z, y, x) "
                f'{np.round(centre, 1).tolist()}, outside the volume '
                f"{tuple(shape)} ({results.get('img_path')}); the file was "
                f'made for other scans')
        results['crop_source'] = 'hard'
        results['hard_region'] = region
        return centre

    def __repr__(self) -> str:
        return (super().__repr__()[:-1] +
                f', hard_regions_file={self.hard_regions_file!r}, '
                f'hard_prob={self.hard_prob}, kinds={self.kinds})')
