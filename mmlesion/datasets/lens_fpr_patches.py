# Copyright (c) mmlesion contributors. All rights reserved.
"""3D patches around LENS's 3D proposals for the false-positive reduction
network (Yan et al., TMI 2020, Sec. IV-D and VI-B)."""
import json
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.registry import DATASETS
from mmengine.dataset import BaseDataset
from mmengine.structures import BaseDataElement

from mmlesion.datasets.transforms.loading import read_hu_png

FORMAT = 'mmlesion.lens_fpr_proposals/1'


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
    from mmlesion.mining.strategies import box_iou
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


@DATASETS.register_module()
class LENSFPRPatchDataset(BaseDataset):
    """3D CT patches centred on LENS 3D proposals, for :class:`~mmlesion.
    models.LENSFPR`.

    The annotation file (written by ``tools/lens_fpr_proposals.py``)::

        {"metainfo": {"format": "mmlesion.lens_fpr_proposals/1", ...},
         "proposals": [{"series_dir": <folder under data_prefix.img>,
                        "bbox_3d": [x1, y1, z1, x2, y2, z2],  # z: slice idx
                        "score": s_LENS, "label": 1 | 0}, ...]}

    Each sample is a (1, Z, Y, X) patch of ``patch_size`` around the
    proposal's centre (slices outside the stored range repeat the nearest
    stored one; pixels outside the image are air), windowed to [-1, 1],
    with ``bbox_3d`` moved to patch coordinates (the sample's metainfo of a
    ``BaseDataElement``, which mmengine's collate keeps per sample). The patch is the same for
    all proposals (the paper does not give its size): the RoI of ResBlocks
    1-3 is the box, that of ResBlock 4 the whole patch.

    For :class:`~mmlesion.datasets.samplers.LENSDatasetBatchSampler`
    (``pos_neg_ratio=0.5`` gives TP : FP = 1 : 2 per epoch, Sec. VI-B) it
    answers ``dataset_id`` (always 0) and ``is_positive`` (TP).

    Args:
        ann_file (str): the proposal file.
        data_root (str): the DeepLesion-layout root.
        data_prefix (dict): ``img`` folder of the series.
        patch_size (tuple): (Z, Y, X) in slices and pixels.
        hu_window (tuple): HU window mapped to [-1, 1].
        **kwargs: :class:`BaseDataset` arguments.
    """

    def __init__(self,
                 ann_file: str,
                 data_root: str = '',
                 data_prefix: dict = dict(img='Images_png/'),
                 patch_size: Tuple[int, int, int] = (8, 64, 64),
                 hu_window: Tuple[float, float] = (-1024., 3071.),
                 **kwargs) -> None:
        self.patch_size = tuple(int(v) for v in patch_size)
        self.hu_window = tuple(float(v) for v in hu_window)
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            serialize_data=False,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'FPR proposal file not found: {self.ann_file}')
        with open(self.ann_file) as f:
            data = json.load(f)
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
                     label=int(p['label'])))
        return out

    def dataset_id(self, idx: int) -> int:
        return 0

    def is_positive(self, idx: int) -> bool:
        return bool(self.get_data_info(idx)['label'])

    def _slice(self, series_dir: str, z: int) -> np.ndarray:
        path = osp.join(series_dir, f'{z:03d}.png')
        if not osp.isfile(path):
            raise FileNotFoundError(path)
        return read_hu_png(path)

    def prepare_data(self, idx: int) -> dict:
        info = self.get_data_info(idx)
        stored = sorted(
            int(n[:-4]) for n in os.listdir(info['series_dir'])
            if n.endswith('.png') and n[:-4].isdigit())
        if not stored:
            raise FileNotFoundError(
                f"no <index>.png slices in {info['series_dir']}")
        patch, box = crop_fpr_patch(
            lambda z: self._slice(info['series_dir'], z), stored,
            info['bbox_3d'], self.patch_size, self.hu_window)
        return dict(
            inputs=torch.from_numpy(patch)[None],
            data_samples=BaseDataElement(
                metainfo=dict(
                    bbox_3d=box,
                    label=info['label'],
                    lens_score=info['lens_score'],
                    series_dir=info['series_dir'])))


def crop_fpr_patch(read_slice: Callable[[int], np.ndarray],
                   stored: Sequence[int],
                   bbox_3d: Sequence[float],
                   patch_size: Tuple[int, int, int],
                   hu_window: Tuple[float, float]
                   ) -> Tuple[np.ndarray, List[float]]:
    """The FPR input patch of one 3D box (shared by the PNG dataset and
    the in-memory volume adapter, so both crop the same patch).

    A ``patch_size`` (Z, Y, X) patch centred on the box (z start
    ``round(cz - Z / 2)``, same in y, x); a slice outside the stored ones
    repeats the nearest stored slice, pixels outside the image are
    ``hu_window[0]`` (air); HU windowed to [-1, 1].

    Args:
        read_slice (Callable): slice index -> (H, W) HU image.
        stored (Sequence[int]): sorted indices of the available slices.
        bbox_3d (Sequence[float]): ``[x1, y1, z1, x2, y2, z2]``, z in slice
            indices.
        patch_size (tuple): (Z, Y, X).
        hu_window (tuple): (lo, hi) HU.

    Returns:
        tuple: the (Z, Y, X) float32 patch and the box in patch
        coordinates.
    """
    pz, py, px = patch_size
    x1, y1, z1, x2, y2, z2 = bbox_3d
    cz, cy, cx = (z1 + z2) / 2, (y1 + y2) / 2, (x1 + x2) / 2
    z0 = int(round(cz - pz / 2))
    y0, x0 = int(round(cy - py / 2)), int(round(cx - px / 2))
    lo, hi = hu_window
    patch = np.full((pz, py, px), lo, np.float32)
    for k in range(pz):
        z = min(stored, key=lambda s: abs(s - (z0 + k)))
        img = read_slice(z)
        ys, xs = max(y0, 0), max(x0, 0)
        ye, xe = min(y0 + py, img.shape[0]), min(x0 + px, img.shape[1])
        if ye > ys and xe > xs:
            patch[k, ys - y0:ye - y0, xs - x0:xe - x0] = img[ys:ye, xs:xe]
    patch = np.clip((patch - lo) / (hi - lo), 0, 1) * 2 - 1
    box = [x1 - x0, y1 - y0, z1 - z0, x2 - x0, y2 - y0, z2 - z0]
    return patch, box


class VolumeFPRPatches:
    """:class:`LENSFPRPatchDataset`'s samples cropped from in-memory
    volumes instead of DeepLesion PNG folders (``tools/infer_volume.py``
    re-scores the findings of a scan it holds in memory).

    Same crop (:func:`crop_fpr_patch`), same sample format; every slice of
    a volume is "stored". The volume must be in the grid the boxes refer
    to (for ``infer_volume``: the scan resampled to the detector's slice
    interval and pixel spacing).

    Args:
        volumes (dict): name -> (Z, Y, X) HU array.
        proposals (list[dict]): ``series_dir`` (a key of ``volumes``),
            ``bbox_3d`` and ``score`` (``s_LENS``), as the proposal file.
        patch_size (tuple): (Z, Y, X).
        hu_window (tuple): HU window mapped to [-1, 1].
    """

    def __init__(self, volumes: Dict[str, np.ndarray],
                 proposals: Sequence[dict],
                 patch_size: Tuple[int, int, int] = (8, 64, 64),
                 hu_window: Tuple[float, float] = (-1024., 3071.)) -> None:
        for i, p in enumerate(proposals):
            if p['series_dir'] not in volumes:
                raise KeyError(f"proposals[{i}]: no volume named "
                               f"{p['series_dir']!r} (have "
                               f'{sorted(volumes)})')
        self.volumes = volumes
        self.proposals = list(proposals)
        self.patch_size = tuple(int(v) for v in patch_size)
        self.hu_window = tuple(float(v) for v in hu_window)

    def __len__(self) -> int:
        return len(self.proposals)

    def __getitem__(self, idx: int) -> dict:
        p = self.proposals[idx]
        vol = self.volumes[p['series_dir']]
        patch, box = crop_fpr_patch(lambda z: vol[z], range(len(vol)),
                                    [float(v) for v in p['bbox_3d']],
                                    self.patch_size, self.hu_window)
        return dict(
            inputs=torch.from_numpy(patch)[None],
            data_samples=BaseDataElement(
                metainfo=dict(
                    bbox_3d=box,
                    label=int(p.get('label', 0)),
                    lens_score=float(p.get('score', 0.)),
                    series_dir=p['series_dir'])))
