# Copyright (c) mmlesion contributors. All rights reserved.
"""3D boxes of the connected components of a label map (KiTS19, LiTS,
NIH-LN masks)."""
import logging
import math
from typing import List, Sequence

import numpy as np
from mmengine.logging import print_log
from scipy import ndimage


def check_label_map(path: str, array: np.ndarray) -> None:
    """Refuse a float label map holding values between the labels.

    Matching the lesion labels would silently keep only the voxels of an
    interpolated (or probability) map exactly equal to one. Whole numbers
    stored as float are labels: accepted, with a warning.

    Args:
        path (str): the label map file, named in the error.
        array (np.ndarray): its voxels in the stored type.

    Raises:
        ValueError: naming the file, the dtype and how many voxels are not
            whole numbers.
    """
    if not np.issubdtype(array.dtype, np.floating) or array.size == 0:
        return
    count, example = 0, None
    for plane in np.asarray(array).reshape((-1, ) + array.shape[-2:]):
        with np.errstate(invalid='ignore'):
            bad = plane != np.round(plane)  # one slice at a time
        n = int(np.count_nonzero(bad))
        if n and example is None:
            example = float(plane[bad][0])
        count += n
    if count:
        raise ValueError(
            f'{path}: label map of dtype {array.dtype} has {count} of '
            f'{array.size} voxels that are not whole numbers (e.g. '
            f'{example:g}): an interpolated or probability map, not labels, '
            'of which only the voxels equal to a label would be kept; '
            'refusing it (resample label maps with nearest-neighbour '
            'interpolation, or threshold them)')
    print_log(
        f'{path}: label map stored as {array.dtype}; its values are whole '
        'numbers, used as labels', logger='current', level=logging.WARNING)


def mask_to_boxes_3d(mask: np.ndarray,
                     spacing_zyx: Sequence[float],
                     connectivity: int = 3,
                     min_voxels: int = 1,
                     instances: bool = False) -> List[dict]:
    """One 3D box per connected component of the non-zero voxels of a
    (z, y, x) label map, or per label value of an instance map.

    Components come from ``scipy.ndimage.label`` with
    ``generate_binary_structure(3, connectivity)`` (1: faces, 2: + edges,
    3: + corners); two lesions touching each other are one component (its
    ``label_values`` then name the values it holds).

    Args:
        mask (np.ndarray): (z, y, x) label map (bool, 0/1 or values).
        spacing_zyx (sequence[float]): voxel size (mm), for the diameter.
        connectivity (int): 1, 2 or 3. Defaults to 3.
        min_voxels (int): smaller components are dropped. Defaults to 1.
        instances (bool): ``mask`` is an instance map (0 background, each
            other value one lesion, however many pieces it has): one box per
            value, no component labelling.

    Returns:
        list[dict]: sorted by the component's first voxel (z, y, x):
        ``bbox`` ``[x1, y1, z1, x2, y2, z2]`` in continuous voxels (voxel
        ``a..b`` -> ``[a - 0.5, b + 0.5]``), ``num_voxels``,
        ``diameter_mm`` (equivalent-sphere diameter, (6 V / pi)^(1/3)),
        ``slice_boxes`` (z -> ``[x1, y1, x2, y2]`` extent on that slice),
        ``label_values`` (the values of ``mask`` in it, ascending) and
        ``pieces`` (its connected components: 1 unless ``instances``).
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f'mask must be (z, y, x), got shape {mask.shape}')
    if connectivity not in (1, 2, 3):
        raise ValueError(f'connectivity must be 1, 2 or 3, got '
                         f'{connectivity}')
    structure = ndimage.generate_binary_structure(3, connectivity)
    values = mask
    mask = mask != 0
    # label only the bounding box of the foreground (a tumour is a tiny
    # part of a 512 x 512 x 800 scan)
    found = ndimage.find_objects(mask.view(np.uint8))
    if not found:
        return []
    crop = found[0]
    pieces, _ = ndimage.label(mask[crop], structure=structure)
    values = np.asarray(values[crop], dtype=np.int64)
    if instances:
        labels, num = values, int(values.max())
    else:
        labels, num = pieces, int(pieces.max())
    # the (lesion, value, piece) triples present: which values a component
    # holds, in how many pieces a value lies
    fg = mask[crop]
    triples = np.unique(np.stack([labels[fg], values[fg], pieces[fg]]),
                        axis=1)
    off_z, off_y, off_x = (s.start for s in crop)
    counts = np.bincount(labels.ravel(), minlength=num + 1)
    voxel_mm3 = float(np.prod(spacing_zyx))
    out = []
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None or counts[i] < min_voxels:
            continue
        comp = labels[sl] == i
        z0, y0, x0 = (sl[0].start + off_z, sl[1].start + off_y,
                      sl[2].start + off_x)
        slice_boxes = {}
        for k in range(comp.shape[0]):
            ys = np.flatnonzero(comp[k].any(1))
            xs = np.flatnonzero(comp[k].any(0))
            if ys.size:
                slice_boxes[z0 + k] = [float(v) for v in (
                    x0 + xs[0] - 0.5, y0 + ys[0] - 0.5, x0 + xs[-1] + 0.5,
                    y0 + ys[-1] + 0.5)]
        dz, dy, dx = comp.shape
        out.append(dict(
            bbox=[float(v) for v in (x0 - 0.5, y0 - 0.5, z0 - 0.5,
                                     x0 + dx - 0.5, y0 + dy - 0.5,
                                     z0 + dz - 0.5)],
            num_voxels=int(counts[i]),
            diameter_mm=float((6 * counts[i] * voxel_mm3 / math.pi)**(1 / 3)),
            slice_boxes=slice_boxes,
            label_values=[int(v) for v in np.unique(
                triples[1, triples[0] == i])],
            pieces=int(np.count_nonzero(triples[0] == i))
            if instances else 1))
    out.sort(key=lambda d: (d['bbox'][2], d['bbox'][1], d['bbox'][0]))
    return out
