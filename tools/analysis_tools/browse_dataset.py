# Copyright (c) mmlesion contributors. All rights reserved.
"""Browse a lesion dataset through its pipeline (mmdet's tool, CT inputs).

Same options as mmdet's ``tools/analysis_tools/browse_dataset.py``::

    python tools/analysis_tools/browse_dataset.py CONFIG \\
        --output-dir browse --not-show [--cfg-options ...] [--window -160 240]

mmdet's tool saves the pipeline's input tensor as an 8-bit picture: a
windowed CT input lies in [-1, 1] and comes out black, a 9-slice input
shows three neighbour slices instead of the key slice, a 3D input cannot be
drawn at all, and every picture is named after the slice file
(``<slice>.png``), so DeepLesion series overwrite each other. This tool
draws what the model sees after the training pipeline (augmentations
included) with the boxes the model trains on (red):

- 2.5D inputs (N slices as channels): the key slice (middle channel),
  mapped back to HU through the config's ``WindowHU`` and shown in the
  display window; named ``<series>_<slice>.png`` (the DeepLesion
  ``File_name``).
- 3D inputs (1, D, H, W): the axial slice through the centre of the first
  ground-truth box (the middle slice without one), with every box crossing
  it; named ``<scan>_z<index>.png``.

Pictures are written atomically (temporary file, then rename).
"""
import argparse
import os
import os.path as osp
import tempfile
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.config import Config

from mmlesion_cli import tool_parser
from mmlesion_cli.common_args import add_cfg_options_argument

if TYPE_CHECKING:
    from mmdet.visualization import DetLocalVisualizer


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--output-dir',
        default=None,
        type=str,
        help='save the pictures here (for a machine without a display)')
    parser.add_argument(
        '--not-show', default=False, action='store_true',
        help='do not open a window per picture')
    parser.add_argument(
        '--show-interval',
        type=float,
        default=2,
        help='the interval of show (s)')
    parser.add_argument(
        '--window',
        type=float,
        nargs=2,
        default=None,
        help="display window (low high) in HU (default: mmlesion's "
        'soft-tissue window, SOFT_TISSUE_WINDOW of '
        'mmlesion.visualization.lesion_visualizer)')
    add_cfg_options_argument(parser)
    return parser.parse_args(argv)


def window_transform(pipeline: Sequence[dict]
                     ) -> Optional[Tuple[Tuple[float, float],
                                         Tuple[float, float]]]:
    """``(window, out_range)`` of the pipeline's ``WindowHU``, if any."""
    for t in pipeline:
        if t.get('type') == 'WindowHU':
            return (tuple(t.get('window', (-1024., 1050.))),
                    tuple(t.get('out_range', (-1., 1.))))
    return None


def to_hu(image: np.ndarray, windowing) -> np.ndarray:
    """Undo ``WindowHU``'s linear map (values inside the window)."""
    if windowing is None:
        return image
    (lo, hi), (a, b) = windowing
    return lo + (image - a) * (hi - lo) / (b - a)


def draw_item(item: dict, windowing, window: Tuple[float, float],
              drawer: 'DetLocalVisualizer') -> Tuple[str, np.ndarray]:
    """The picture of one dataset item and its file name.

    Args:
        item (dict): ``inputs`` and ``data_samples`` from the pipeline.
        windowing: :func:`window_transform` of the pipeline.
        window (tuple[float, float]): display window in HU.
        drawer (DetLocalVisualizer): the config's visualizer.

    Returns:
        tuple[str, np.ndarray]: name and (H, W, 3) uint8 RGB picture.
    """
    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.visualization.lesion_visualizer import (draw_lesion_overlay,
                                                          key_slice_name,
                                                          window_to_rgb)
    inputs = item['inputs'].float().numpy()
    sample = item['data_samples']
    boxes = sample.gt_instances.bboxes
    boxes = np.asarray(getattr(boxes, 'tensor', boxes), dtype=np.float32)
    img_path = str(sample.metainfo.get('img_path') or 'input')
    if inputs.ndim == 4:  # (1, D, H, W) volume
        boxes = boxes.reshape(-1, 6)
        depth = inputs.shape[1]
        z = int((boxes[0, 2] + boxes[0, 5]) / 2) if len(boxes) else depth // 2
        z = min(max(z, 0), depth - 1)
        crossing = boxes[(boxes[:, 2] <= z + .5) & (boxes[:, 5] >= z + .5)]
        image = inputs[0, z]
        boxes2d = crossing[:, [0, 1, 3, 4]]
        stem = osp.splitext(osp.basename(img_path.rstrip('/')))[0]
        name = f'{stem}_z{z:03d}.png'
    else:  # (N, H, W) slices, key slice in the middle
        image = inputs[inputs.shape[0] // 2]
        boxes2d = boxes.reshape(-1, 4)
        name = key_slice_name(img_path, sample.metainfo.get('file_name'))
    rgb = window_to_rgb(to_hu(image, windowing), window)
    return name, draw_lesion_overlay(drawer, rgb, gt_boxes=boxes2d)


def write_picture(path: str, rgb: np.ndarray) -> None:
    """Write a picture atomically (a temporary file renamed over it)."""
    import mmcv
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=osp.splitext(path)[1], dir=folder)
    os.close(fd)
    try:
        if not mmcv.imwrite(rgb[..., ::-1], tmp):
            raise OSError(f'{path}: cannot write the picture')
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def main(argv: Optional[List[str]] = None) -> List[str]:
    """Draw every training sample; return the written files."""
    args = parse_args(argv)
    from mmdet.registry import DATASETS, VISUALIZERS
    from mmdet.visualization import DetLocalVisualizer
    from mmengine.registry import init_default_scope
    from mmengine.utils import ProgressBar

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.visualization.lesion_visualizer import (SOFT_TISSUE_WINDOW,
                                                          window_of)
    if args.window is None:
        args.window = SOFT_TISSUE_WINDOW
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        from mmlesion.utils.configs.cfg_options import apply_cfg_options
        apply_cfg_options(cfg, args.cfg_options, source=args.config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    window = window_of(args.window)

    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    drawer = VISUALIZERS.build(cfg.visualizer)
    if not isinstance(drawer, DetLocalVisualizer):
        drawer = DetLocalVisualizer(name='mmlesion_browse_dataset')
    drawer.dataset_meta = dataset.metainfo
    pipeline_cfg = _pipeline_cfg(cfg.train_dataloader.dataset)
    windowing = window_transform(pipeline_cfg)

    written = []
    progress_bar = ProgressBar(len(dataset))
    for index in range(len(dataset)):  # wrappers such as RepeatDataset
        # wrap indices around: iterating them never ends
        name, drawn = draw_item(dataset[index], windowing, window, drawer)
        if not args.not_show:
            drawer.show(drawn, win_name=name, wait_time=args.show_interval)
        if args.output_dir is not None:
            out_file = osp.join(args.output_dir, name)
            write_picture(out_file, drawn)
            written.append(out_file)
        progress_bar.update()
    return written


def _pipeline_cfg(dataset_cfg: dict) -> list:
    """The pipeline of a dataset config (inside wrappers: the first)."""
    if 'pipeline' in dataset_cfg:
        return list(dataset_cfg['pipeline'])
    if 'dataset' in dataset_cfg:
        return _pipeline_cfg(dataset_cfg['dataset'])
    if 'datasets' in dataset_cfg:
        return _pipeline_cfg(dataset_cfg['datasets'][0])
    return []


if __name__ == '__main__':
    main()
