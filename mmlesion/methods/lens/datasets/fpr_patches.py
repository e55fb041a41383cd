# Copyright (c) mmlesion contributors. All rights reserved.
"""3D patches around LENS's 3D proposals for the false-positive reduction
network (Yan et al., TMI 2020, Sec. IV-D and VI-B)."""
import os.path as osp
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.registry import DATASETS
from mmengine.dataset import BaseDataset
from mmengine.structures import BaseDataElement

from mmlesion.datasets.deeplesion.dl_info import series_spacings
from mmlesion.datasets.deeplesion.png_slices import read_hu_png
from mmlesion.datasets.deeplesion.series_slices import stored_slices
from mmlesion.datasets.volumes.annotation_file import read_json_file

FORMAT = 'mmlesion.lens_fpr_proposals/1'
#: (z, y, x) mm of an FPR patch voxel: the grid LENS resamples every scan to
#: (2 mm slices, 0.8 mm pixels, Sec. VI-A).
DEFAULT_PATCH_SPACING = (2., 0.8, 0.8)


def label_fpr_proposal(boxes_2d: Sequence[tuple],
                       positives: Dict[int, np.ndarray],
                       everything: Dict[int, np.ndarray],
                       tp_thr: float = 0.5,
                       fp_thr: float = 0.3) -> Optional[int]:
    """TP / FP label of a 3D proposal (LENS Sec. VI-B).

    TP (1): a 2D box of the proposal has IoU > ``tp_thr`` with an annotation
    or mined annotation on its slice ("key-slice IoU"). FP (0): every 2D box
    has IoU < ``fp_thr`` with everything on its slice (annotations, mined
    and uncertain lesions). Otherwise None (not used for training).

    Args:
        boxes_2d (Sequence[tuple]): ``(z, [x1, y1, x2, y2], score)``.
        positives (dict): slice -> (k, 4) annotations and mined boxes.
        everything (dict): slice -> (k, 4) the above plus uncertain boxes.
    """
    from mmlesion.structures.box_iou_2d import box_iou
    best_pos, best_any = 0., 0.
    for z, box, _ in boxes_2d:
        box = np.asarray(box, np.float32)[None]
        if z in positives and len(positives[z]):
            best_pos = max(best_pos, float(box_iou(box, positives[z]).max()))
        if z in everything and len(everything[z]):
            best_any = max(best_any,
                           float(box_iou(box, everything[z]).max()))
    if best_pos > tp_thr:
        return 1
    if best_any < fp_thr:
        return 0
    return None


def positive_box_3d(box: Sequence[float], decimals: int = 2) -> List[float]:
    """A 3D box rounded to ``decimals``, each extent at least one unit of
    the last decimal (:class:`LENSFPRPatchDataset` rejects flat boxes).

    Args:
        box (Sequence[float]): ``[x1, y1, z1, x2, y2, z2]``.
        decimals (int): decimals kept.

    Returns:
        list[float]: the rounded box with a positive extent.
    """
    step = 10.**-decimals
    b = [round(float(v), decimals) for v in box]
    for i in range(3):
        b[i + 3] = max(b[i + 3], round(b[i] + step, decimals))
    return b


@DATASETS.register_module()
class LENSFPRPatchDataset(BaseDataset):
    """3D CT patches centred on LENS 3D proposals, for :class:`~mmlesion.
    models.LENSFPR`.

    The annotation file (written by ``tools/lens_fpr_proposals.py``)::

        {"metainfo": {"format": "mmlesion.lens_fpr_proposals/1", ...},
         "proposals": [{"series_dir": <folder under data_prefix.img>,
                        "bbox_3d": [x1, y1, z1, x2, y2, z2],  # z: slice idx
                        "score": s_LENS, "label": 1 | 0}, ...]}

    Each sample is the (1, Z, Y, X) patch of :func:`crop_fpr_patch` around
    the proposal, with ``bbox_3d`` in patch voxels (metainfo of a
    ``BaseDataElement``). A series' voxel size is the proposal's
    ``spacing`` ([z, y, x] mm), else from ``data_root/DL_info.csv``. It
    answers ``dataset_id`` (0) and ``is_positive`` (TP) for
    :class:`~mmlesion.methods.lens.datasets.LENSDatasetBatchSampler`
    (``pos_neg_ratio=0.5``: TP : FP = 1 : 2, Sec. VI-B).

    Args:
        ann_file (str): the proposal file.
        data_root (str): the DeepLesion-layout root.
        data_prefix (dict): ``img`` folder of the series.
        patch_size (tuple): (Z, Y, X) patch voxels.
        patch_spacing (tuple, optional): (z, y, x) mm of a patch voxel
            (default LENS's grid, Sec. VI-A); None: the series' own voxels.
        hu_window (tuple): HU window mapped to [-1, 1].
        dl_info_file (str): the CSV (relative to ``data_root``) giving the
            series' spacings. Defaults to ``'DL_info.csv'``.
        **kwargs: :class:`BaseDataset` arguments.
    """

    def __init__(self,
                 ann_file: str,
                 data_root: str = '',
                 data_prefix: dict = dict(img='Images_png/'),
                 patch_size: Tuple[int, int, int] = (8, 64, 64),
                 patch_spacing: Optional[Tuple[
                     float, float, float]] = DEFAULT_PATCH_SPACING,
                 hu_window: Tuple[float, float] = (-1024., 3071.),
                 dl_info_file: str = 'DL_info.csv',
                 **kwargs) -> None:
        self.patch_size = tuple(int(v) for v in patch_size)
        self.patch_spacing = None if patch_spacing is None else tuple(
            float(v) for v in patch_spacing)
        self.hu_window = tuple(float(v) for v in hu_window)
        self.dl_info_file = dl_info_file
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            serialize_data=False,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        data = read_json_file(
            self.ann_file, f'FPR proposal file not found: {self.ann_file}')
        if data.get('metainfo', {}).get('format') != FORMAT:
            raise ValueError(f'{self.ann_file}: not a {FORMAT} file '
                             '(tools/lens_fpr_proposals.py writes them)')
        out = []
        for i, p in enumerate(data.get('proposals', [])):
            for key in ('series_dir', 'bbox_3d', 'label'):
                if key not in p:
                    raise ValueError(
                        f"{self.ann_file}: proposals[{i}] has no '{key}'")
            box = p['bbox_3d']
            if len(box) != 6 or box[3] <= box[0] or box[4] <= box[1] \
                    or box[5] <= box[2]:
                raise ValueError(
                    f'{self.ann_file}: proposals[{i}].bbox_3d = {box} is '
                    'not [x1, y1, z1, x2, y2, z2] with positive extents')
            if p['label'] not in (0, 1):
                raise ValueError(f'{self.ann_file}: proposals[{i}].label '
                                 f"must be 0 or 1, got {p['label']!r}")
            out.append(
                dict(series_dir=osp.join(self.data_prefix['img'],
                                         p['series_dir']),
                     bbox_3d=[float(v) for v in box],
                     lens_score=float(p.get('score', 0.)),
                     label=int(p['label']),
                     spacing=self._spacing(p, i)))
        return out

    def _spacing(self, proposal: dict, index: int) -> Optional[list]:
        """(z, y, x) mm of the proposal's series (None without
        ``patch_spacing``)."""
        if self.patch_spacing is None:
            return None
        if 'spacing' in proposal:
            sp = proposal['spacing']
            if not (isinstance(sp, (list, tuple)) and len(sp) == 3 and all(
                    isinstance(v, (int, float)) and v > 0 for v in sp)):
                raise ValueError(
                    f'{self.ann_file}: proposals[{index}].spacing = {sp!r} '
                    'is not 3 positive numbers (z, y, x mm)')
            return [float(v) for v in sp]
        if not hasattr(self, '_series_spacing'):
            self._series_spacing = series_spacings(
                osp.join(self.data_root, self.dl_info_file))
        name = proposal['series_dir']
        if name not in self._series_spacing:
            raise ValueError(
                f"{self.ann_file}: proposals[{index}].series_dir {name!r} "
                f'has no row in {self.dl_info_file} and the proposal no '
                "'spacing' (z, y, x mm): its voxel size is unknown (or set "
                'patch_spacing=None to crop native voxels)')
        slice_interval, pixel_spacing = self._series_spacing[name]
        return [slice_interval, pixel_spacing, pixel_spacing]

    def dataset_id(self, idx: int) -> int:
        return 0

    def is_positive(self, idx: int) -> bool:
        return bool(self.get_data_info(idx)['label'])

    def prepare_data(self, idx: int) -> dict:
        info = self.get_data_info(idx)
        folder = info['series_dir']
        stored = stored_slices(folder)
        if not stored:
            raise FileNotFoundError(f'no <index>.png slices in {folder}')
        patch, box = crop_fpr_patch(
            lambda z: read_hu_png(osp.join(folder, f'{z:03d}.png')), stored,
            info['bbox_3d'], FPRPatchSpec(self.patch_size, self.hu_window,
                                          self.patch_spacing),
            info['spacing'])
        return _fpr_sample(patch, box, info['label'], info['lens_score'],
                           info['series_dir'])


def _fpr_sample(patch: np.ndarray, box: List[float], label: int,
                score: float, series_dir: str) -> dict:
    """A sample of the FPR network: the (1, Z, Y, X) patch and its box."""
    return dict(
        inputs=torch.from_numpy(patch)[None],
        data_samples=BaseDataElement(
            metainfo=dict(bbox_3d=box, label=label, lens_score=score,
                          series_dir=series_dir)))


def _sample_positions(centre: float, size: int, scale: float) -> np.ndarray:
    """Source voxel indices (continuous, voxel ``i`` centred at ``i``) of
    ``size`` patch voxels of ``scale`` source voxels each, centred on the
    continuous coordinate ``centre`` (voxel ``i`` spans ``[i, i + 1)``, the
    boxes' convention)."""
    return centre + (np.arange(size) + 0.5 - size / 2) * scale - 0.5


class FPRPatch(NamedTuple):
    """A (Z, Y, X) float32 patch and the box in its coordinates (patch
    voxels)."""
    patch: np.ndarray
    box: List[float]


class FPRPatchSpec(NamedTuple):
    """The FPR input patch :func:`crop_fpr_patch` cuts.

    Args:
        patch_size (tuple): (Z, Y, X) voxels.
        hu_window (tuple): (lo, hi) HU.
        patch_spacing (Sequence[float], optional): the patch's (z, y, x)
            voxel size in mm (None: source voxels).
    """
    patch_size: Tuple[int, int, int]
    hu_window: Tuple[float, float]
    patch_spacing: Optional[Sequence[float]] = None


def crop_fpr_patch(read_slice: Callable[[int], np.ndarray],
                   stored: Sequence[int],
                   bbox_3d: Sequence[float],
                   spec: FPRPatchSpec,
                   src_spacing: Optional[Sequence[float]] = None
                   ) -> FPRPatch:
    """The FPR input patch of one 3D box (the PNG dataset's and the
    in-memory volumes').

    ``patch_size`` voxels of ``patch_spacing`` mm centred on the box
    (Sec. VI-A: 0.8 mm pixels, 2 mm slices), resampled trilinearly; missing
    slices repeat the nearest stored one, pixels outside the image are
    ``hu_window[0]``; windowed to [-1, 1]. Without spacings patch voxels
    are source voxels.

    Args:
        read_slice (Callable): slice index -> (H, W) HU image.
        stored (Sequence[int]): sorted indices of the available slices.
        bbox_3d (Sequence[float]): ``[x1, y1, z1, x2, y2, z2]``, z in slice
            indices, x / y in pixels (voxel ``i`` spans ``[i, i + 1)``).
        spec (FPRPatchSpec): the patch's size, HU window and spacing.
        src_spacing (Sequence[float], optional): the scan's (z, y, x) voxel
            size in mm (slice interval, pixel spacing); with
            ``spec.patch_spacing`` only.

    Returns:
        tuple: the (Z, Y, X) float32 patch and the box in patch
        coordinates (patch voxels).
    """
    from scipy.ndimage import map_coordinates
    patch_size, hu_window, patch_spacing = spec
    if (src_spacing is None) != (patch_spacing is None):
        raise ValueError('crop_fpr_patch: give both src_spacing and '
                         'patch_spacing, or neither')
    if src_spacing is None:
        scale = (1., 1., 1.)
    else:
        if len(src_spacing) != 3 or len(patch_spacing) != 3 or min(
                src_spacing) <= 0 or min(patch_spacing) <= 0:
            raise ValueError(
                'crop_fpr_patch: spacings must be 3 positive (z, y, x) mm, '
                f'got src_spacing={src_spacing}, '
                f'patch_spacing={patch_spacing}')
        scale = tuple(float(p) / float(s)
                      for p, s in zip(patch_spacing, src_spacing))
    x1, y1, z1, x2, y2, z2 = bbox_3d
    centre = ((z1 + z2) / 2, (y1 + y2) / 2, (x1 + x2) / 2)
    pos = [
        _sample_positions(c, n, r)
        for c, n, r in zip(centre, patch_size, scale)
    ]
    lo_idx = [int(np.floor(p.min())) for p in pos]
    hi_idx = [int(np.floor(p.max())) + 1 for p in pos]  # inclusive
    lo, hi = hu_window
    stored = list(stored)
    block = np.full([b - a + 1 for a, b in zip(lo_idx, hi_idx)], lo,
                    np.float32)
    cache: Dict[int, np.ndarray] = {}
    (zl, yl, xl), (_, yh, xh) = lo_idx, hi_idx
    for k in range(block.shape[0]):
        z = min(stored, key=lambda s: abs(s - (zl + k)))
        if z not in cache:
            cache[z] = read_slice(z)
        img = cache[z]
        ys, xs = max(yl, 0), max(xl, 0)
        ye, xe = min(yh + 1, img.shape[0]), min(xh + 1, img.shape[1])
        if ye > ys and xe > xs:
            block[k, ys - yl:ye - yl, xs - xl:xe - xl] = img[ys:ye, xs:xe]
    grid = np.meshgrid(*[p - a for p, a in zip(pos, lo_idx)], indexing='ij')
    patch = map_coordinates(block, grid, order=1, mode='nearest')
    patch = np.clip((patch - lo) / (hi - lo), 0, 1) * 2 - 1
    # patch origin (continuous source coordinates) and voxel scale
    origin = [c - n * r / 2 for c, n, r in zip(centre, patch_size, scale)]
    (oz, oy, ox), (rz, ry, rx) = origin, scale
    box = [(x1 - ox) / rx, (y1 - oy) / ry, (z1 - oz) / rz,
           (x2 - ox) / rx, (y2 - oy) / ry, (z2 - oz) / rz]
    return FPRPatch(patch.astype(np.float32), box)


class VolumeFPRPatches:
    """:class:`LENSFPRPatchDataset`'s samples cropped from in-memory
    volumes (``tools/infer_volume.py``), in the grid the boxes refer to.

    Args:
        volumes (dict): name -> (Z, Y, X) HU array.
        proposals (list[dict]): ``series_dir`` (a key of ``volumes``),
            ``bbox_3d`` and ``score`` (``s_LENS``), as the proposal file.
        patch_size (tuple): (Z, Y, X) patch voxels.
        hu_window (tuple): HU window mapped to [-1, 1].
        spacings (dict, optional): name -> (z, y, x) mm of the volume's
            voxels; required with ``patch_spacing``.
        patch_spacing (tuple, optional): (z, y, x) mm of a patch voxel, as
            :class:`LENSFPRPatchDataset`. Defaults to None (native voxels).
    """

    def __init__(self, volumes: Dict[str, np.ndarray],
                 proposals: Sequence[dict],
                 patch_size: Tuple[int, int, int] = (8, 64, 64),
                 hu_window: Tuple[float, float] = (-1024., 3071.),
                 spacings: Optional[Dict[str, Sequence[float]]] = None,
                 patch_spacing: Optional[Sequence[float]] = None) -> None:
        for i, p in enumerate(proposals):
            if p['series_dir'] not in volumes:
                raise KeyError(f"proposals[{i}]: no volume named "
                               f"{p['series_dir']!r} (have "
                               f'{sorted(volumes)})')
            if patch_spacing is not None and p['series_dir'] not in (
                    spacings or {}):
                raise KeyError(
                    f"proposals[{i}]: no spacing for volume "
                    f"{p['series_dir']!r}: patch_spacing needs the voxel "
                    'size of every volume (spacings)')
        self.volumes = volumes
        self.proposals = list(proposals)
        self.patch_size = tuple(int(v) for v in patch_size)
        self.hu_window = tuple(float(v) for v in hu_window)
        self.spacings = spacings or {}
        self.patch_spacing = None if patch_spacing is None else tuple(
            float(v) for v in patch_spacing)

    def __len__(self) -> int:
        return len(self.proposals)

    def __getitem__(self, idx: int) -> dict:
        p = self.proposals[idx]
        vol = self.volumes[p['series_dir']]
        src = None if self.patch_spacing is None else self.spacings[
            p['series_dir']]
        patch, box = crop_fpr_patch(lambda z: vol[z], range(len(vol)),
                                    [float(v) for v in p['bbox_3d']],
                                    FPRPatchSpec(self.patch_size,
                                                 self.hu_window,
                                                 self.patch_spacing), src)
        return _fpr_sample(patch, box, int(p.get('label', 0)),
                           float(p.get('score', 0.)), p['series_dir'])
