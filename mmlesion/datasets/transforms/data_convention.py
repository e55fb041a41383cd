# Copyright (c) mmlesion contributors. All rights reserved.
"""The data convention a 2.5D pipeline gives its model: how many slices,
their interval and the pixel spacing of the pictures it sees
(:func:`pipeline_convention`), recorded with a checkpoint at training time
(:class:`~mmlesion.engine.hooks.DataConventionHook`) and used by whole-scan
inference (:mod:`mmlesion.apis.whole_scan.settings`)."""
from typing import (Any, Iterable, Mapping, Optional, Sequence, Tuple,
                    TypedDict)

import numpy as np

from mmlesion.utils.tool_defaults import tool_defaults

#: Pixel spacing used when neither the checkpoint nor the config tells it:
#: the DeepLesion slices (512 px, ~0.8 mm/px) the 2.5D configs resize to 512
#: (``tool_defaults.json``: ``tools/infer_volume.py --help`` shows it).
DEFAULT_PIXEL_SPACING = tool_defaults(__file__)['DEFAULT_PIXEL_SPACING']
#: ``LoadDeepLesionSlices``' ``interval_mm`` when the config sets none.
DEFAULT_INTERVAL_MM = 2.0
#: Key of a checkpoint's ``meta`` recording the convention of the training
#: data (:class:`~mmlesion.engine.hooks.DataConventionHook`).
DATA_CONVENTION_KEY = 'mmlesion_data_convention'


class DataConvention(TypedDict):
    """The input convention of a 2.5D model, the record a checkpoint's
    ``meta`` holds under :data:`DATA_CONVENTION_KEY`.

    Attributes:
        num_slices (int): slices of an input.
        interval_mm (float, optional): their interval (None: the loader
            does not set it).
        pixel_spacing (float, optional): mm/px of what the model sees
            (None: unknown).
        images (int): how many images gave ``pixel_spacing``.
    """
    num_slices: int
    interval_mm: Optional[float]
    pixel_spacing: Optional[float]
    images: int


#: Parts of transform names that crop or pad to a size the pipeline does
#: not tell (a later fixed-size ``Resize`` then scales by an unknown factor).
_SIZE_CHANGING = ('Crop', 'Clip', 'Pad')


def positive_or_none(value: Any) -> Optional[float]:
    """``value`` as a float if it is a finite number > 0, else None."""
    if isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None


def _resized_shape(t: Mapping, shape: Optional[Tuple[float, float]]
                   ) -> Optional[Tuple[float, float]]:
    """The ``(h, w)`` of an image of ``shape`` after mmdet's ``Resize``
    ``t`` (mmcv's rounding), or None where it cannot be told."""
    scale, factor = t.get('scale'), t.get('scale_factor')
    if shape is None:
        return None
    h, w = shape
    if scale is None:
        if factor is None:
            return None
        fx, fy = ((factor, factor) if isinstance(factor, (int, float))
                  else tuple(factor)[:2])
        scale = (int(w * float(fx) + .5), int(h * float(fy) + .5))
    elif isinstance(scale, (int, float)):
        scale = (scale, scale)
    sw, sh = (float(v) for v in tuple(scale)[:2])
    if not t.get('keep_ratio', False):
        return sh, sw
    f = min(max(sw, sh) / max(h, w), min(sw, sh) / min(h, w))
    return float(int(h * f + .5)), float(int(w * f + .5))


def _step_spacing(t: Mapping, spacing: Optional[float],
                  shape: Optional[Tuple[float, float]]
                  ) -> Tuple[Optional[float], Optional[Tuple[float, float]]]:
    """The pixel spacing (mm/px) and image ``(h, w)`` after transform
    ``t`` (None: unknown)."""
    kind = str(t.get('type'))
    if kind == 'ResampleToSpacing':
        target = float(t.get('spacing', .8))
        if spacing is None or shape is None:
            return target, None
        return target, tuple(max(1., round(v * spacing / target))
                             for v in shape)
    if kind == 'Resize':
        if spacing is None:
            return None, None
        new = _resized_shape(t, shape)
        if new is not None:
            return spacing * shape[1] / max(new[1], 1.), new
        factor = t.get('scale_factor')
        if t.get('scale') is None and factor is not None:  # size-free
            fx = factor if isinstance(factor, (int, float)) else tuple(
                factor)[0]
            return spacing / float(fx), None
        return None, None
    if 'Resize' in kind:  # RandomResize, FixShapeResize, ...: not modelled
        return None, None
    if any(part in kind for part in _SIZE_CHANGING):
        return spacing, None
    return spacing, shape


def _pipeline_spacing(steps: Sequence[Mapping], spacing: Optional[float],
                      shape: Optional[Tuple[float, float]]
                      ) -> Optional[float]:
    """The pixel spacing an image of ``spacing`` and ``shape`` has after
    ``steps`` (None: unknown)."""
    for t in steps:
        spacing, shape = _step_spacing(t, spacing, shape)
    return spacing


def pipeline_convention(pipeline: Sequence[Mapping],
                        images: Iterable[Mapping] = ()
                        ) -> Optional[DataConvention]:
    """The input convention a 2.5D pipeline gives its model: the slices,
    their interval and the pixel spacing (mm/px) of what the model sees.

    The pixel spacing follows the transforms after ``LoadDeepLesionSlices``:
    ``ResampleToSpacing`` sets it; mmdet's ``Resize`` scales it by its
    factor (for a fixed ``scale``, known from the sizes of ``images``, lost
    after a crop or pad); other resizes leave it unknown; random zooms
    around 1 are ignored.

    Args:
        pipeline (Sequence[Mapping]): transform dicts, one of them
            ``LoadDeepLesionSlices``.
        images (Iterable[Mapping]): data infos (``spacing`` in mm/px,
            ``height``, ``width``) of the images the pipeline reads; the
            pixel spacing is then the median over them. Defaults to none.

    Returns:
        DataConvention | None: ``images`` is 0 for ``ResampleToSpacing``
        alone; None for a pipeline without ``LoadDeepLesionSlices``.
    """
    types = [t.get('type') for t in pipeline]
    if 'LoadDeepLesionSlices' not in types:
        return None
    pos = types.index('LoadDeepLesionSlices')
    loader, steps = pipeline[pos], list(pipeline[pos + 1:])
    spacings = []
    for info in images:
        if not isinstance(info, Mapping):
            continue
        spacing = positive_or_none(info.get('spacing'))
        h = positive_or_none(info.get('height'))
        w = positive_or_none(info.get('width'))
        if spacing is None or h is None or w is None:
            continue
        got = _pipeline_spacing(steps, spacing, (h, w))
        if got is not None:
            spacings.append(got)
    if spacings:
        pixel_spacing = round(float(np.median(spacings)), 4)
    else:
        pixel_spacing = _pipeline_spacing(steps, None, None)
    interval = loader.get('interval_mm')
    return DataConvention(
        num_slices=int(loader.get('num_slices', 3)),
        interval_mm=None if interval is None else float(interval),
        pixel_spacing=pixel_spacing, images=len(spacings))
