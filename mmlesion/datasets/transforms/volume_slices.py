# Copyright (c) mmlesion contributors. All rights reserved.
"""Multi-slice 2.5D inputs taken straight from an in-memory CT volume."""
from mmdet.registry import TRANSFORMS

from .loading import LoadDeepLesionSlices
from .slice_channels import slices_from_volume  # noqa: F401  (re-exported)


@TRANSFORMS.register_module()
class LoadVolumeSlices(LoadDeepLesionSlices):
    """Build a slice's N-channel input from a (z, y, x) HU volume.

    The in-memory counterpart of :class:`LoadDeepLesionSlices` (same
    arguments, same channel positions, same HU clamp), used to run a 2.5D
    detector's own test pipeline on every slice of a CT scan
    (:mod:`mmlesion.apis.whole_scan.infer`): channel ``k`` is the image at
    ``z = key * slice_interval + k * interval_mm``, linearly interpolated
    between the two slices around it. Positions beyond the first or last
    slice take that slice (the DeepLesion rule for missing neighbours:
    repeat the nearest existing slice towards the key slice).

    Required keys: ``volume`` (float32 (z, y, x) array in HU, shared by all
    slices, not copied), ``key_slice`` (int), ``slice_interval`` (mm, the z
    spacing of ``volume``).

    Added keys: ``img`` (float32 H x W x N), ``img_shape``, ``ori_shape``.
    ``volume`` is removed from the results (so it is never packed).

    Args:
        num_slices (int): N, odd. Defaults to 3.
        interval_mm (float): distance between channels in mm. Defaults to 2.
        hu_clip (tuple[float, float], optional): HU range. Defaults to
            (-1024, 3071).
    """

    def transform(self, results: dict) -> dict:
        """Take the N channels around ``results['key_slice']``."""
        img = self._volume_channels(results, results.pop('volume'))
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results
