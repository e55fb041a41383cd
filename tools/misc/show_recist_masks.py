# Copyright (c) mmlesion contributors. All rights reserved.
"""Draw the GrabCut masks made from RECIST diameters (PNG per key slice).

Zlocha et al. 2019, Fig. 1(b): each picture shows the whole key slice with
the lesion boxes, then one zoomed panel per lesion with the mask (red fill
and contour), the box (green), the RECIST long (yellow) and short (cyan)
diameters and the quadrilateral (blue) that GrabCut takes as definite
foreground. The panel title line gives the method (grabcut / tiny /
degenerate / failed) and the mask / box and quadrilateral / box area
fractions.

Examples::

    python tools/misc/show_recist_masks.py --csv \
        data/DeepLesion/annotations/DL_info_val.csv \
        --skip-missing --out-dir work_dirs/recist_masks_vis --num 20
    python tools/misc/show_recist_masks.py CONFIG --split train \
        --out-dir work_dirs/vis --cache-dir data/DeepLesion/recist_masks
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence

import numpy as np
from mmengine.config import DictAction

from mmlesion_cli import tool_parser

PANEL = 256  # side of a zoomed lesion panel (px)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('config', nargs='?', help='config file')
    parser.add_argument('--csv', help='DeepLesion DL_info.csv instead')
    parser.add_argument('--img-dir', help='Images_png folder of --csv')
    parser.add_argument(
        '--split',
        default=None,
        help='dataloader (config: train/val/test, default train) or '
        'Train_Val_Test split of --csv (default all)')
    parser.add_argument(
        '--skip-missing',
        action='store_true',
        help='skip key slices whose PNG is missing (--csv)')
    parser.add_argument('--out-dir', required=True, help='output folder')
    parser.add_argument(
        '--num', type=int, default=20, help='number of key slices (0: all)')
    parser.add_argument(
        '--cache-dir', help='show cached masks (recist_to_masks.py output)')
    parser.add_argument(
        '--window',
        type=float,
        nargs=2,
        default=None,
        help='HU window of the GrabCut image (default: the pipeline\'s '
        'RecistToMask or -160 240)')
    parser.add_argument(
        '--show-window',
        type=float,
        nargs=2,
        default=(-160., 240.),
        help='HU window of the picture')
    parser.add_argument(
        '--force', action='store_true', help='overwrite existing PNGs')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default=None,
        help='override config settings, key=value (mmengine DictAction)')
    return parser.parse_args(argv)


def _pt(p: np.ndarray, x0: float, y0: float, zoom: float) -> tuple:
    """Image coordinate -> integer panel coordinate (pixel centres)."""
    return (int(round((p[0] - x0 + 0.5) * zoom - 0.5)),
            int(round((p[1] - y0 + 0.5) * zoom - 0.5)))


def draw_lesion_panel(image_u8: np.ndarray, bbox: np.ndarray,
                      recist: np.ndarray, mask: np.ndarray,
                      title: str) -> np.ndarray:
    """One zoomed BGR panel of a lesion (see the module docstring)."""
    import cv2

    from mmlesion.datasets.transforms.recist_grabcut_ops import recist_polygon
    h, w = image_u8.shape[:2]
    x1, y1, x2, y2 = bbox
    side = max(x2 - x1, y2 - y1, 8.0)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half = side * 0.9
    xa, ya = int(max(np.floor(cx - half), 0)), int(max(np.floor(cy - half), 0))
    xb, yb = int(min(np.ceil(cx + half),
                     w - 1)), int(min(np.ceil(cy + half), h - 1))
    crop = image_u8[ya:yb + 1, xa:xb + 1]
    zoom = PANEL / max(crop.shape[:2])
    size = (int(round(crop.shape[1] * zoom)), int(round(crop.shape[0] * zoom)))
    panel = cv2.resize(crop, size, interpolation=cv2.INTER_NEAREST).copy()
    m = cv2.resize(
        mask[ya:yb + 1, xa:xb + 1].astype(np.uint8),
        size,
        interpolation=cv2.INTER_NEAREST).astype(bool)
    red = np.array([0, 0, 255], dtype=np.float32)
    panel[m] = (0.6 * panel[m] + 0.4 * red).astype(np.uint8)
    contours, _ = cv2.findContours(
        m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(panel, contours, -1, (0, 0, 255), 1)
    cv2.rectangle(panel, _pt(np.array([x1, y1]), xa, ya, zoom),
                  _pt(np.array([x2, y2]), xa, ya, zoom), (0, 200, 0), 1)
    if np.all(np.isfinite(recist)):
        poly = np.array([_pt(p, xa, ya, zoom) for p in recist_polygon(recist)],
                        dtype=np.int32)
        cv2.polylines(panel, [poly], True, (255, 80, 0), 1)
        cv2.line(panel, _pt(recist[0], xa, ya, zoom),
                 _pt(recist[1], xa, ya, zoom), (0, 255, 255), 1)
        cv2.line(panel, _pt(recist[2], xa, ya, zoom),
                 _pt(recist[3], xa, ya, zoom), (255, 255, 0), 1)
    bar = np.zeros((18, panel.shape[1], 3), dtype=np.uint8)
    cv2.putText(bar, title, (2, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38,
                (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([bar, panel], axis=0)


def draw_image(image_u8: np.ndarray, bboxes: np.ndarray, recists: np.ndarray,
               masks: List[np.ndarray], titles: List[str]) -> np.ndarray:
    """The whole slice (boxes, masks) and one panel per lesion, BGR."""
    import cv2
    full = image_u8.copy()
    for bbox, mask in zip(bboxes, masks):
        full[mask.astype(bool)] = (0.6 * full[mask.astype(bool)] +
                                   0.4 * np.array([0, 0, 255])).astype(
                                       np.uint8)
        cv2.rectangle(full, (int(round(bbox[0])), int(round(bbox[1]))),
                      (int(round(bbox[2])), int(round(bbox[3]))), (0, 200, 0),
                      1)
    panels = [full] + [
        draw_lesion_panel(image_u8, b, r, m, t)
        for b, r, m, t in zip(bboxes, recists, masks, titles)
    ]
    height = max(p.shape[0] for p in panels)
    padded = [
        np.pad(p, ((0, height - p.shape[0]), (0, 4), (0, 0))) for p in panels
    ]
    return np.concatenate(padded, axis=1)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    import cv2

    from mmlesion.datasets.transforms.recist_mask_source import (
        RecistSource, build_recist_source)
    from mmlesion.datasets.transforms.recist_grabcut import RecistToMask
    from mmlesion.datasets.transforms.recist_grabcut_ops import (
        box_pixel_mask, key_slice_uint8, paste_crop, rasterize_polygon,
        recist_polygon)
    from mmlesion.utils.writing.atomic import atomic_save_with
    cfg_options = args.cfg_options
    overrides = {}
    if args.window is not None:
        overrides['window'] = tuple(args.window)
    split = args.split or ('train' if args.config else 'all')
    dataset, masker = build_recist_source(
        RecistSource(config=args.config, split=split, csv=args.csv,
                     img_dir=args.img_dir, skip_missing=args.skip_missing,
                     cfg_options=cfg_options),
        mask_overrides=overrides)
    if args.cache_dir:
        masker = RecistToMask(
            **masker.params, cache_dir=args.cache_dir, cache_missing='error')
    os.makedirs(args.out_dir, exist_ok=True)
    num = len(dataset) if args.num <= 0 else min(args.num, len(dataset))
    written = 0
    for i in range(num):
        results = dataset[i]
        name = osp.splitext(
            results.get('file_name') or osp.basename(results['img_path']))[0]
        out = osp.join(args.out_dir, f'{name}.png')
        if osp.exists(out) and not args.force:
            print(f'{out} exists, skipped (use --force)', file=sys.stderr)
            continue
        bboxes = results['gt_bboxes'].tensor.numpy().astype(np.float64)
        recists = np.asarray(results['gt_recists'], dtype=np.float64)
        shape = results['img'].shape[:2]
        if args.cache_dir:
            masks = list(masker.transform(dict(results))['gt_masks'].masks)
            methods = ['cache'] * len(masks)
        else:
            crops, offsets, methods = masker.compute_masks(results)
            masks = [paste_crop(c, o, shape) for c, o in zip(crops, offsets)]
        image = key_slice_uint8(results['img'], tuple(args.show_window),
                                results.get('hu_window'),
                                results.get('hu_out_range'))
        titles = []
        for bbox, rec, mask, method in zip(bboxes, recists, masks, methods):
            box_area = max(int(box_pixel_mask(bbox, shape).sum()), 1)
            quad = rasterize_polygon(recist_polygon(rec), shape) & \
                box_pixel_mask(bbox, shape) if np.all(
                    np.isfinite(rec)) else np.zeros(shape, bool)
            titles.append(f'{method} mask/box {mask.sum() / box_area:.2f} '
                          f'quad/box {quad.sum() / box_area:.2f}')
        picture = draw_image(image, bboxes, recists, masks, titles)
        atomic_save_with(out, lambda p: cv2.imwrite(p, picture))
        written += 1
    print(f'{written} picture(s) written to {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
