# Copyright (c) mmlesion contributors. All rights reserved.
"""A CT volume with its geometry, and world <-> voxel conversion (by
:mod:`mmlesion.structures.ct_geometry`).

Coordinate conventions (shared by every 3D component of mmlesion):

- ``array`` is indexed ``(z, y, x)`` (numpy order of
  ``SimpleITK.GetArrayFromImage``), float32, in HU.
- World coordinates are SimpleITK's physical points ``(x, y, z)`` in mm,
  LPS (DICOM patient coordinates, as LUNA16's ``coordX/Y/Z``).
- **Continuous voxel coordinates are SimpleITK's continuous index**: the
  centre of voxel ``i`` is at ``i`` and the voxel spans ``[i - 0.5,
  i + 0.5]``. A 3D box ``[x1, y1, z1, x2, y2, z2]`` is given in these
  coordinates; its extent ``x2 - x1`` is a length in voxels (a mask
  component covering voxels ``a..b`` has the box ``[a - 0.5, b + 0.5]``,
  extent ``b - a + 1``) and its centre maps to the lesion's world centre
  through :meth:`CTVolume.voxel_to_world`.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from mmlesion.structures.ct_geometry import voxel_to_world, world_to_voxel


@dataclass
class CTVolume:
    """A CT scan in canonical axial orientation, with its geometry.

    Attributes:
        array (np.ndarray): (z, y, x) float32 image in HU (rescale slope and
            intercept applied).
        spacing_zyx (tuple): voxel size in mm along z, y, x.
        origin_xyz (tuple): world position (mm, LPS) of the centre of voxel
            ``(0, 0, 0)``.
        direction (np.ndarray): 3x3 SimpleITK direction matrix (columns =
            world directions of the x, y, z index axes).
        meta (dict): ``path``, ``series_uid``, ``modality`` and whatever
            the reader adds.
    """
    array: np.ndarray
    spacing_zyx: Sequence[float]
    origin_xyz: Sequence[float]
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    meta: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        if self.array.ndim != 3:
            raise ValueError(f'CTVolume needs a (z, y, x) array, got shape '
                             f'{self.array.shape}')
        self.spacing_zyx = tuple(float(s) for s in self.spacing_zyx)
        self.origin_xyz = tuple(float(o) for o in self.origin_xyz)
        self.direction = np.asarray(
            self.direction, dtype=np.float64).reshape(3, 3)
        if len(self.spacing_zyx) != 3 or len(self.origin_xyz) != 3:
            raise ValueError('spacing_zyx and origin_xyz need 3 values, got '
                             f'{self.spacing_zyx} and {self.origin_xyz}')

    @property
    def shape_zyx(self) -> Tuple[int, int, int]:
        """The array shape ``(z, y, x)``."""
        return tuple(int(s) for s in self.array.shape)

    @property
    def spacing_xyz(self) -> np.ndarray:
        """Voxel size in mm along x, y, z."""
        return np.asarray(self.spacing_zyx[::-1], dtype=np.float64)

    @property
    def series_uid(self) -> Optional[str]:
        """``meta['series_uid']`` (None if unknown)."""
        return self.meta.get('series_uid')

    def world_to_voxel(self, points_xyz: np.ndarray) -> np.ndarray:
        """:func:`~mmlesion.structures.ct_geometry.world_to_voxel` in this
        volume's geometry: (N, 3) world points -> (N, 3) indices (z, y, x)."""
        return world_to_voxel(points_xyz, self.spacing_zyx, self.origin_xyz,
                              self.direction)

    def voxel_to_world(self, points_zyx: np.ndarray) -> np.ndarray:
        """:func:`~mmlesion.structures.ct_geometry.voxel_to_world` in this
        volume's geometry: (N, 3) indices (z, y, x) -> (N, 3) world points."""
        return voxel_to_world(points_zyx, self.spacing_zyx, self.origin_xyz,
                              self.direction)

    def to_sitk(self) -> sitk.Image:
        """Return a SimpleITK image with this array and geometry."""
        img = sitk.GetImageFromArray(self.array)
        img.SetSpacing(tuple(self.spacing_xyz.tolist()))
        img.SetOrigin(self.origin_xyz)
        img.SetDirection(tuple(self.direction.ravel().tolist()))
        return img

    @classmethod
    def from_sitk(cls,
                  img: sitk.Image,
                  dtype: Optional[type] = np.float32,
                  **meta: Any) -> 'CTVolume':
        """Build a volume from a 3D SimpleITK image.

        Args:
            img (sitk.Image): a 3D scalar image.
            dtype (type, optional): cast the array to it (float32 HU by
                default); None keeps SimpleITK's pixel type.
            **meta: stored in :attr:`meta`.

        Returns:
            CTVolume: array ``(z, y, x)`` with the image's geometry.
        """
        if img.GetDimension() != 3:
            raise ValueError(f'{meta.get("path", "image")}: expected a 3D '
                             f'image, got {img.GetDimension()}D')
        array = sitk.GetArrayFromImage(img)
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        return cls(
            array=array,
            spacing_zyx=tuple(img.GetSpacing())[::-1],
            origin_xyz=tuple(img.GetOrigin()),
            direction=np.asarray(img.GetDirection()).reshape(3, 3),
            meta=dict(meta))
