# Copyright (c) mmlesion contributors. All rights reserved.
"""Lung masks of chest CT scans: LUNA16's official ones, or computed.

The 3D Aggregated Faster R-CNN (Sec. IV-A) crops every scan to its lungs
with "officially provided segmentation masks" (LUNA16's
``seg-lungs-LUNA16``: one ``<seriesuid>.mhd`` per scan, on the scan's grid,
3 = left lung, 4 = right lung, 5 = trachea / main bronchi).
:func:`read_lung_mask` reads those; :func:`compute_lung_mask` computes one
with SciPy / SimpleITK routines where no official mask exists, and
:func:`compute_lung_box` only its bounding box (the lung crop's need,
several times faster).
"""
from dataclasses import astuple, dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from .ct_volume import CTVolume
from .loading import VolumeOptions, load_ct_volume

#: Labels of the lungs in LUNA16's ``seg-lungs-LUNA16`` masks (left, right;
#: 5, the trachea, lies between them and does not change the crop).
LUNA16_LUNG_LABELS = (3, 4)


def read_lung_mask(path: str,
                   labels: Sequence[int] = LUNA16_LUNG_LABELS) -> CTVolume:
    """Read a lung label map (e.g. LUNA16's) as a boolean mask volume.

    Args:
        path (str): the label map (``.mhd`` + ``.zraw``/``.raw``, NIfTI...);
            read like a scan, so it lands on the scan's canonical grid.
        labels (Sequence[int]): the values that are lung.

    Returns:
        CTVolume: ``array`` (z, y, x) bool and the map's geometry.

    Raises:
        FileNotFoundError / ValueError: from :func:`load_ct_volume`, naming
            the file.
    """
    vol = load_ct_volume(path, scan_checks=dict(force_ct=True),
                         options=VolumeOptions(dtype=None))
    vol.array = np.isin(vol.array, np.asarray(list(labels)))
    return vol


def _closing(mask: np.ndarray, spacing_zyx: Sequence[float],
             radius_mm: float) -> np.ndarray:
    """SimpleITK binary closing with a ball of ``radius_mm`` (at least 1
    voxel per axis), on the mask's bounding box plus the radius."""
    radius = [max(1, int(round(radius_mm / s))) for s in spacing_zyx]
    idx = np.nonzero(mask)
    lo = [max(int(i.min()) - r, 0) for i, r in zip(idx, radius)]
    hi = [min(int(i.max()) + r + 1, n)
          for i, r, n in zip(idx, radius, mask.shape)]
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    img = sitk.GetImageFromArray(mask[box].astype(np.uint8))
    closed = sitk.BinaryMorphologicalClosing(img, radius[::-1], sitk.sitkBall)
    out = mask.copy()
    out[box] |= sitk.GetArrayViewFromImage(closed) > 0
    return out


def _solid_box(air: np.ndarray
               ) -> Optional[Tuple[Tuple[int, int], Tuple[int, int]]]:
    """The in-plane box ``((y0, y1), (x0, x1))`` (stops exclusive) of the
    voxels of a (z, y, x) air mask that are not air, on all slices; None if
    all are air.

    The air components that do not touch the in-plane border are the same,
    voxel for voxel, in the mask cut to this box: air outside the box
    reaches the image border along its row or column, so a component
    touching the box's border touches the image's, and a component away
    from the image's border lies inside the box, away from its border.
    """
    solid = ~air.all(axis=0)  # (y, x): not air on some slice
    ys = np.flatnonzero(solid.any(axis=1))
    if not len(ys):
        return None
    xs = np.flatnonzero(solid.any(axis=0))
    return (int(ys[0]), int(ys[-1]) + 1), (int(xs[0]), int(xs[-1]) + 1)


@dataclass(frozen=True)
class LungMaskSettings:
    """The recipe of :func:`compute_lung_mask` and :func:`compute_lung_box`
    (a lung crop's ``compute_cfg``).

    Args:
        threshold_hu (float): air / tissue threshold.
        gas_hu (float): HU below which a voxel is pure gas.
        max_gas_fraction (float): components with a larger fraction of gas
            voxels are gas, not lung.
        num_components (int): largest components kept.
        min_component_ratio (float): smallest kept component, relative to
            the largest.
        closing_radius_mm (float): closing radius (0: no closing).
    """
    threshold_hu: float = -320.
    gas_hu: float = -950.
    max_gas_fraction: float = 0.25
    num_components: int = 2
    min_component_ratio: float = 0.1
    closing_radius_mm: float = 2.

    def __post_init__(self):
        if self.num_components < 1:
            raise ValueError(f'num_components must be >= 1, got '
                             f'{self.num_components}')


def _lung_components(volume: CTVolume, settings: LungMaskSettings
                     ) -> Tuple[np.ndarray, List[int]]:
    """Steps 1 to 4 of :func:`compute_lung_mask`: the air components'
    labels (``scipy.ndimage.label``) and the lung labels kept (largest
    first; empty if none)."""
    (threshold_hu, gas_hu, max_gas_fraction, num_components,
     min_component_ratio, _) = astuple(settings)
    img = np.asarray(volume.array)
    labels, num = ndi.label(img < threshold_hu)
    # an explicit astype: np.bincount's own cast is about 6x slower
    flat = labels.ravel().astype(np.intp)
    sizes = np.bincount(flat, minlength=num + 1).astype(np.float64)
    # gas voxels per component: a count of the gas voxels' labels
    gas = np.bincount(labels[img < gas_hu].astype(np.intp),
                      minlength=num + 1).astype(np.float64)
    sizes[0] = 0
    border = np.unique(np.concatenate([
        labels[:, 0].ravel(), labels[:, -1].ravel(), labels[:, :, 0].ravel(),
        labels[:, :, -1].ravel()
    ]))
    sizes[border] = 0
    sizes[gas > max_gas_fraction * np.maximum(sizes, 1)] = 0
    kept = [int(c) for c in np.argsort(-sizes)[:num_components]
            if sizes[c] > 0]
    if kept:
        kept = [c for c in kept
                if sizes[c] >= min_component_ratio * sizes[kept[0]]]
    return labels, kept


def compute_lung_mask(volume: CTVolume,
                      settings: LungMaskSettings = LungMaskSettings()
                      ) -> np.ndarray:
    """Lung mask of a chest CT by thresholding and connected components.

    The classic recipe (Hu et al., "Automatic lung segmentation for accurate
    quantitation of volumetric X-ray CT images", TMI 2001, and the DSB 2017
    preprocessing of Liao et al., the paper's ref. [9]), with library
    routines:

    1. voxels below ``threshold_hu`` (-320 HU) are air-like;
    2. their 3D connected components (``scipy.ndimage.label``, faces);
    3. components touching the in-plane border (the air around the patient
       and the table, also a lung cut by the field of view) are removed, and
       so are gas components (ours: more than ``max_gas_fraction`` of their
       voxels below ``gas_hu``, as bowel gas; a lung with more than 25 %
       emphysema is taken for gas, so use the official masks for such
       scans);
    4. the ``num_components`` largest remaining components are kept, each
       at least ``min_component_ratio`` of the largest;
    5. holes are filled slice by slice, then a binary closing with a ball
       of ``closing_radius_mm`` (SimpleITK) smooths the boundary.

    Args:
        volume (CTVolume): a CT in HU.
        settings (LungMaskSettings): the thresholds, the components kept
            and the closing radius named above.

    Returns:
        np.ndarray: (z, y, x) bool mask (all False if no lung was found).
    """
    labels, kept = _lung_components(volume, settings)
    closing_radius_mm = settings.closing_radius_mm
    if not kept:
        return np.zeros(labels.shape, dtype=bool)
    mask = np.isin(labels, kept)
    for z in range(mask.shape[0]):
        if mask[z].any():
            mask[z] = ndi.binary_fill_holes(mask[z])
    if closing_radius_mm > 0:
        mask = _closing(mask, volume.spacing_zyx, closing_radius_mm)
    return mask


def compute_lung_box(volume: CTVolume,
                     settings: LungMaskSettings = LungMaskSettings()
                     ) -> Optional[Tuple[Tuple[int, ...], Tuple[int, ...]]]:
    """The voxel bounding box of :func:`compute_lung_mask` (the same
    settings), without computing the mask: what a lung crop needs.

    The box is the kept components' (steps 1 to 4, with SimpleITK's
    multi-threaded ``ConnectedComponent`` and
    ``LabelShapeStatisticsImageFilter``, on the in-plane box of the voxels
    that are not air only: ``_solid_box``). Step 5 cannot change it, so it
    is skipped: filling a slice's holes keeps its box (a pixel outside the
    box reaches the border along its row or column), and a closing by a
    symmetric ball neither grows a box (a voxel of the erosion needs the
    ball around it inside the dilation) nor shrinks it (it contains the
    set). Components of equal size are ranked by the raster order of their
    box corner.

    Returns:
        tuple | None: ``(start_zyx, stop_zyx)`` (stop exclusive), or None if
        no lung was found.
    """
    # the box does not depend on the closing radius (see above)
    (threshold_hu, gas_hu, max_gas_fraction, num_components,
     min_component_ratio, _) = astuple(settings)
    img = np.asarray(volume.array)
    air = img < threshold_hu
    # only the in-plane box of the voxels that are not air (_solid_box)
    region = _solid_box(air)
    if region is None:
        return None  # all air: one component, on the border
    (y0, y1), (x0, x1) = region
    # SimpleITK's face-connected components and statistics use all cores
    components = sitk.ConnectedComponent(
        sitk.GetImageFromArray(air[:, y0:y1, x0:x1].view(np.uint8)), False)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.ComputePerimeterOff()  # sizes and boxes only: half the time
    stats.Execute(components)
    nx, ny, _ = components.GetSize()
    candidates = []
    for label in stats.GetLabels():
        bx, by, bz, sx, sy, sz = stats.GetBoundingBox(label)
        if bx == 0 or by == 0 or bx + sx == nx or by + sy == ny:
            continue  # touches the in-plane border: air around the patient
        # (start, stop) in the labelled box
        candidates.append((int(stats.GetNumberOfPixels(label)),
                           (bz, by, bx), (bz + sz, by + sy, bx + sx),
                           label))
    # largest first; among equal sizes, the first in raster order of the
    # box corner (deterministic, whatever the numbering)
    candidates.sort(key=lambda c: (-c[0], c[1]))
    kept = []
    for size, start, stop, label in candidates:
        if len(kept) == num_components:
            break
        # the gas test, inside this component's box only (a copy of that
        # region) and only for the components that can still be kept
        roi = sitk.RegionOfInterest(
            components, [b - a for a, b in zip(start, stop)][::-1],
            list(start)[::-1])
        # a view of the region's pixels: ``roi`` must outlive it
        labels = sitk.GetArrayViewFromImage(roi)
        start = (start[0], start[1] + y0, start[2] + x0)
        stop = (stop[0], stop[1] + y0, stop[2] + x0)
        box = tuple(slice(a, b) for a, b in zip(start, stop))
        gas = np.count_nonzero((labels == label) & (img[box] < gas_hu))
        if gas > max_gas_fraction * max(size, 1):
            continue
        kept.append((size, start, stop))
    if not kept:
        return None
    kept = [c for c in kept if c[0] >= min_component_ratio * kept[0][0]]
    start = tuple(min(c[1][a] for c in kept) for a in range(3))
    stop = tuple(max(c[2][a] for c in kept) for a in range(3))
    return start, stop


def box_corner_mask(shape_zyx: Sequence[int], start_zyx: Sequence[int],
                    stop_zyx: Sequence[int]) -> np.ndarray:
    """A (z, y, x) bool mask whose bounding box is ``start .. stop - 1``
    (its two corner voxels set): a box in the form that
    :func:`~mmlesion.datasets.volumes.cropping.mask_region` maps onto
    another grid. ``np.zeros`` does not touch memory it does not write, so
    this costs milliseconds on a whole scan."""
    mask = np.zeros(tuple(int(n) for n in shape_zyx), dtype=bool)
    mask[tuple(int(a) for a in start_zyx)] = True
    mask[tuple(int(b) - 1 for b in stop_zyx)] = True
    return mask
