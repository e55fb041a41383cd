# Copyright (c) mmlesion contributors. All rights reserved.
"""Where a NIfTI's voxels lie, by NIfTI-1's rule, and the headers that
readers place differently.

:func:`nifti_geometry` places the voxels as NIfTI-1 says (and nibabel
reads): by the sform when ``sform_code > 0``, else by the qform when
``qform_code > 0``. ITK may choose otherwise (its qform when
``sform_code`` is 2, the voxel sizes of ``pixdim`` with an sform), so the
reader puts this geometry on the image ITK read. A header that readers
place differently (e.g. spatial units that ITK scales and nibabel does
not, a qform and an sform that disagree) is refused, naming the file and
the field.
"""
import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np
import SimpleITK as sitk

from .nifti import QUATERN_TOL, NiftiHeader

#: Largest difference (mm, or mm per voxel) between two entries of the
#: qform and sform (3, 4) matrices that is taken as the same transform.
QSFORM_TOL_MM = 1e-3
#: Largest distance, in voxels (of the smallest spacing), between where two
#: transforms (the qform and the sform, or the sform and the sform with the
#: voxel sizes of ``pixdim``) put a corner of the volume that is taken as
#: the same place (a float32 quaternion cannot hold every rotation exactly).
QSFORM_TOL_VOXELS = 0.5
#: NIfTI transform codes (``qform_code`` / ``sform_code``): unknown,
#: scanner, aligned, Talairach, MNI, template (as nibabel knows them).
XFORM_CODES = {0: 'unknown', 1: 'scanner', 2: 'aligned', 3: 'talairach',
               4: 'mni', 5: 'template'}
#: Largest |cosine| of the angle between two axes of an sform that is taken
#: as perpendicular (float32 rounding of a rotation is about 1e-7).
SFORM_SHEAR_TOL = 1e-4
#: Spatial units (``xyzt_units & 7``) other than mm that readers treat
#: differently (ITK scales them to mm, nibabel does not).
_OTHER_UNITS = {1: ('meter', 1000.0), 3: ('micron', 0.001)}
#: RAS (NIfTI) -> LPS (ITK, DICOM) world coordinates.
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


@dataclass
class NiftiGeometry:
    """Where a NIfTI's voxels lie, by NIfTI-1's rule, in ITK's terms.

    Attributes:
        spacing (tuple[float]): voxel sizes along index x, y, z (mm).
        origin (tuple[float]): LPS mm of the centre of voxel (0, 0, 0).
        direction (np.ndarray): (3, 3) LPS directions of the index axes
            (columns).
        source (str): ``'sform'`` or ``'qform'``, the transform used.
        pixdim_differs (bool): the sform's voxel sizes differ from
            ``pixdim`` beyond float32 rounding (within
            :data:`QSFORM_TOL_VOXELS`; ITK warns of "unexpected scales").
    """
    spacing: Tuple[float, float, float]
    origin: Tuple[float, float, float]
    direction: np.ndarray
    source: str
    pixdim_differs: bool = False

    def apply(self, img: sitk.Image) -> None:
        """Give ``img`` (3D or more, as ITK read the file) this geometry on
        its first three axes, in place."""
        n = img.GetDimension()
        spacing, origin = list(img.GetSpacing()), list(img.GetOrigin())
        spacing[:3], origin[:3] = self.spacing, self.origin
        direction = np.eye(n)
        direction[:3, :3] = self.direction
        img.SetSpacing(spacing)
        img.SetOrigin(origin)
        img.SetDirection(direction.ravel().tolist())


def _corner_gap_voxels(sizes: Tuple[int, ...], first: np.ndarray,
                       second: np.ndarray) -> float:
    """How far apart (in voxels of the smallest spacing of ``second``) two
    (3, 4) transforms put the corners of a volume of ``sizes``."""
    sizes = list(sizes[:3]) + [1] * (3 - len(sizes[:3]))
    corners = np.array([[i, j, k, 1.] for i in (0, sizes[0] - 1)
                        for j in (0, sizes[1] - 1)
                        for k in (0, sizes[2] - 1)])
    gap = np.linalg.norm(corners @ (first - second).T, axis=1)
    spacing = np.linalg.norm(second[:, :3], axis=0)
    return float(gap.max() / max(float(spacing.min()), 1e-6))


def check_nifti_qform_sform(path: str, header: NiftiHeader) -> None:
    """Refuse a NIfTI whose qform and sform are both set and disagree
    (put a corner of the volume more than :data:`QSFORM_TOL_VOXELS` apart).

    NIfTI's rule (and this reader) takes the sform; other readers may take
    the qform (ITK 5.4's own does when ``sform_code`` is 2), so the place
    is ambiguous.

    Args:
        path (str): the file.
        header (NiftiHeader): from :func:`read_nifti_header`.

    Raises:
        ValueError: naming the file, both codes, the largest difference and
            the transform this reader would use.
    """
    if header.qform_code <= 0 or header.sform_code <= 0 or (
            header.qform is None or header.sform is None):
        return
    diff = float(np.abs(header.qform - header.sform).max())
    if not diff > QSFORM_TOL_MM or not (_corner_gap_voxels(
            header.sizes, header.qform, header.sform) > QSFORM_TOL_VOXELS):
        return
    raise ValueError(
        f'{path}: NIfTI header fields qform_code = {header.qform_code} and '
        f'sform_code = {header.sform_code} are both set, but the qform '
        '(quatern_b/c/d, qoffset_x/y/z, pixdim) and the sform (srow_x/y/z) '
        f'differ by up to {diff:.4g} mm; this reader would use the sform '
        '(NIfTI\'s rule), other readers may use the qform, so the world '
        'coordinates are ambiguous. Set the wrong one\'s code to 0 (or make '
        'them equal)')


def _check_codes(path: str, header: NiftiHeader) -> None:
    for name in ('qform_code', 'sform_code'):
        code = getattr(header, name)
        if code not in XFORM_CODES:
            known = ', '.join(f'{k} {v}' for k, v in XFORM_CODES.items())
            raise ValueError(
                f'{path}: NIfTI header field {name} = {code} is no NIfTI '
                f'transform code ({known}); readers take it as set or as 0: '
                f'set it to the space its transform maps to (1 for the '
                'scanner\'s), or 0 if that transform is not set')
    if header.qform_code == 0 and header.sform_code == 0:
        raise ValueError(
            f'{path}: NIfTI header fields qform_code = 0 and sform_code = 0: '
            'the orientation is unknown (NIfTI\'s method 1: voxel sizes only,'
            ' which readers orient and place differently); set the qform or '
            'the sform to the scanner\'s orientation (qform_code or '
            'sform_code = 1)')


def _check_units(path: str, header: NiftiHeader) -> None:
    unit = _OTHER_UNITS.get(header.xyzt_units & 7)
    if unit is not None:
        raise ValueError(
            f'{path}: NIfTI header field xyzt_units = {header.xyzt_units} '
            f'(spatial unit: {unit[0]}): readers differ (ITK scales it to '
            'mm, nibabel does not); set it in mm: pixdim[1..3], '
            f'qoffset_x/y/z and srow_x/y/z times {unit[1]:g}, and '
            'xyzt_units = 2 (mm)')


def _check_pixdim(path: str, header: NiftiHeader) -> None:
    for i, value in enumerate(header.pixdim[:3], start=1):
        if not (math.isfinite(value) and value > 0):
            flip = (' (a flip belongs in the qform / sform, e.g. pixdim[0] = '
                    '-1 for z)' if value < 0 else '')
            raise ValueError(
                f'{path}: invalid voxel spacing: NIfTI header field '
                f'pixdim[{i}] = {value} must be finite and > 0 (readers '
                f'take it as 1, as its absolute value or as it is){flip}; '
                'set it to the voxel size in mm')


def _check_qform(path: str, header: NiftiHeader) -> None:
    if header.qfac not in (-1.0, 0.0, 1.0):
        raise ValueError(
            f'{path}: NIfTI header field pixdim[0] = {header.qfac} (qfac, '
            'the qform\'s z sign) must be 1 or -1 (0 is taken as 1); readers '
            'differ on other values: set it to -1 if the slices run against '
            'the qform\'s z axis, else 1')
    if not all(map(math.isfinite, header.quatern)):
        raise ValueError(
            f'{path}: NIfTI header fields quatern_b/c/d, qoffset_x/y/z = '
            f'{header.quatern} must be finite; set the qform again (or '
            'qform_code = 0 where the sform is set)')
    b, c, d = header.quatern[:3]
    norm2 = b * b + c * c + d * d
    if norm2 > 1 + QUATERN_TOL:
        raise ValueError(
            f'{path}: NIfTI header fields quatern_b/c/d = ({b:g}, {c:g}, '
            f'{d:g}) are no rotation (b^2 + c^2 + d^2 = {norm2:.6g} > 1; '
            'readers normalise or refuse it); set the qform again from the '
            'scanner\'s orientation (or qform_code = 0 where the sform is '
            'set)')


def _check_sform(path: str, header: NiftiHeader) -> None:
    sform = header.sform
    where = f'{path}: NIfTI header fields srow_x/y/z'
    if not np.all(np.isfinite(sform)):
        raise ValueError(f'{where} = {sform.tolist()} must be finite; set '
                         'the sform again (or sform_code = 0 where the qform'
                         ' is set)')
    norms = np.linalg.norm(sform[:, :3], axis=0)
    if not np.all(norms > 0):
        axis = 'xyz'[int(np.argmin(norms))]
        raise ValueError(f'{where} = {sform.tolist()}: the sform gives index '
                         f'axis {axis} no length; set the sform again (or '
                         'sform_code = 0 where the qform is set)')
    axes = sform[:, :3] / norms
    cosines = np.abs(axes.T @ axes - np.eye(3))
    if cosines.max() > SFORM_SHEAR_TOL:
        i, j = np.unravel_index(int(np.argmax(cosines)), cosines.shape)
        angle = math.degrees(math.acos(min(float(cosines[i, j]), 1.0)))
        raise ValueError(
            f'{where}: the sform\'s index axes {"xyz"[i]} and {"xyz"[j]} '
            f'are {angle:.4g} degrees apart, not 90 (a sheared grid, which '
            'a CT volume cannot hold); resample it onto a grid without '
            'shear (or set sform_code = 0 if the qform is right)')


def _check_sform_pixdim(path: str, header: NiftiHeader) -> None:
    sform = header.sform
    norms = np.linalg.norm(sform[:, :3], axis=0)
    pixdim_sform = sform.copy()
    pixdim_sform[:, :3] = sform[:, :3] / norms * np.array(header.pixdim[:3])
    if _corner_gap_voxels(header.sizes, pixdim_sform, sform) > \
            QSFORM_TOL_VOXELS:
        raise ValueError(
            f'{path}: NIfTI header fields pixdim[1..3] = '
            f'{tuple(round(p, 6) for p in header.pixdim[:3])} disagree with '
            'the voxel sizes of the sform (srow_x/y/z column lengths) = '
            f'{tuple(round(float(n), 6) for n in norms)} mm; NIfTI uses the '
            'sform\'s, ITK-based readers the pixdim, so the sizes are '
            'ambiguous; set pixdim[1..3] to the right voxel sizes (and the '
            'sform to match)')


def nifti_geometry(path: str, header: NiftiHeader) -> NiftiGeometry:
    """Where a NIfTI's voxels lie, by NIfTI-1's rule: the sform when
    ``sform_code > 0``, else the qform (as nibabel's ``get_best_affine``),
    converted from RAS to LPS.

    Args:
        path (str): the file (named in errors).
        header (NiftiHeader): from :func:`read_nifti_header`.

    Returns:
        NiftiGeometry: spacing, origin and direction for ITK's image.

    Raises:
        ValueError: naming the file, the field and what to do, for a header
            that readers place differently (see the module docstring).
    """
    _check_codes(path, header)
    _check_units(path, header)
    _check_pixdim(path, header)
    if header.qform_code > 0:
        _check_qform(path, header)
    if header.sform_code > 0:
        _check_sform(path, header)
    check_nifti_qform_sform(path, header)
    if header.sform_code > 0:
        _check_sform_pixdim(path, header)
    source = 'sform' if header.sform_code > 0 else 'qform'
    lps = _RAS_TO_LPS @ getattr(header, source)
    spacing = np.linalg.norm(lps[:, :3], axis=0)
    return NiftiGeometry(
        spacing=tuple(float(v) for v in spacing),
        origin=tuple(float(v) for v in lps[:, 3]),
        direction=lps[:, :3] / spacing,
        source=source,
        pixdim_differs=bool(
            np.abs(np.array(header.pixdim[:3]) / spacing - 1).max() > 1e-5))
