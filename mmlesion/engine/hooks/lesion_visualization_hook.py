# Copyright (c) mmlesion contributors. All rights reserved.
"""Visualization hook for 16-bit CT key slices (``tools/test.py --show-dir``):
mmdet's reads DeepLesion's 16-bit PNGs (``HU + 32768``, DeepLesion Sec. 2)
as garbage, so this one windows the key slice in HU.
"""
import os.path as osp
from typing import Optional, Sequence

import mmcv
import numpy as np
import torch
from mmdet.engine.hooks import DetVisualizationHook
from mmdet.registry import HOOKS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox_flip
from mmdet.visualization import DetLocalVisualizer
from mmengine.runner import Runner
from mmengine.utils import mkdir_or_exist

from mmlesion.datasets.deeplesion.png_slices import read_hu_png
from mmlesion.visualization.lesion_visualizer import (SOFT_TISSUE_WINDOW,
                                                      OverlayStyle,
                                                      draw_lesion_overlay,
                                                      key_slice_name,
                                                      window_of,
                                                      window_to_rgb)


@HOOKS.register_module()
class LesionVisualizationHook(DetVisualizationHook):
    """Draw lesion detections on windowed CT key slices (test drawings as
    ``<work_dir>/<timestamp>/<test_out_dir>/<DeepLesion file name>``).

    Args:
        draw (bool): whether to draw at all. Defaults to False.
        interval (int): validation drawing interval. Defaults to 50.
        score_thr (float): predictions below it are not drawn.
            Defaults to 0.3.
        show (bool): display instead of storing. Defaults to False.
        wait_time (float): display time (s). Defaults to 0.
        test_out_dir (str, optional): sub-folder of the run's folder where
            test drawings are saved.
        backend_args (dict, optional): kept for signature compatibility.
        window (Sequence[float]): display window (low, high) in HU.
            Defaults to the soft-tissue window (-160, 240).
        draw_gt (bool): draw ground truth. Defaults to True.
        draw_pred (bool): draw predictions. Defaults to True.
        display_size (int): the pictures are enlarged (nearest neighbour,
            integer factor) until their short side is at least this many
            pixels; 0 keeps the slice's size. Box coordinates are those of
            the slice times the factor. Defaults to 512.
    """

    def __init__(self,
                 draw: bool = False,
                 interval: int = 50,
                 score_thr: float = 0.3,
                 show: bool = False,
                 wait_time: float = 0.,
                 test_out_dir: Optional[str] = None,
                 backend_args: Optional[dict] = None,
                 window: Sequence[float] = SOFT_TISSUE_WINDOW,
                 draw_gt: bool = True,
                 draw_pred: bool = True,
                 display_size: int = 512) -> None:
        super().__init__(draw, interval, score_thr, show, wait_time,
                         test_out_dir, backend_args)
        self.window = window_of(window)
        self.draw_gt = draw_gt
        self.draw_pred = draw_pred
        self.display_size = int(display_size)
        self._test_dir: Optional[str] = None
        self._drawer: Optional[DetLocalVisualizer] = None

    def _get_drawer(self) -> DetLocalVisualizer:
        if isinstance(self._visualizer, DetLocalVisualizer):
            return self._visualizer
        if self._drawer is None:  # a plain mmengine Visualizer was built
            self._drawer = DetLocalVisualizer(
                name='mmlesion_lesion_visualization_hook')
        return self._drawer

    @staticmethod
    def gt_boxes(data_sample: DetDataSample) -> np.ndarray:
        """Ground-truth boxes of a sample in original image pixels.

        Returns:
            np.ndarray: (N, 4) float32.
        """
        meta = data_sample.metainfo
        if 'instances' in meta:
            boxes = [
                inst['bbox'] for inst in meta['instances']
                if not inst.get('ignore_flag', 0)
            ]
            return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if 'gt_instances' not in data_sample or \
                'bboxes' not in data_sample.gt_instances:
            return np.zeros((0, 4), dtype=np.float32)
        boxes = data_sample.gt_instances.bboxes
        if hasattr(boxes, 'tensor'):
            boxes = boxes.tensor
        boxes = torch.as_tensor(boxes).detach().cpu().float().reshape(-1, 4)
        if meta.get('flip', False) and 'img_shape' in meta:
            boxes = bbox_flip(boxes, meta['img_shape'][:2],
                              meta.get('flip_direction', 'horizontal'))
        scale = meta.get('scale_factor')
        if scale is not None:
            boxes = boxes / boxes.new_tensor(
                [scale[0], scale[1], scale[0], scale[1]])
        return boxes.numpy()

    def draw_sample(self, data_sample: DetDataSample) -> np.ndarray:
        """Windowed key slice of a test / val output with ground truth and
        predictions drawn: (kH, kW, 3) uint8 RGB (``k``: the display
        factor)."""
        rgb = window_to_rgb(read_hu_png(str(data_sample.img_path)),
                            self.window)
        gt = self.gt_boxes(data_sample) if self.draw_gt else None
        pred_boxes = pred_scores = None
        if self.draw_pred and 'pred_instances' in data_sample:
            pred = data_sample.pred_instances.cpu()
            pred_boxes, pred_scores = pred.bboxes, pred.scores
        classes = (self._get_drawer().dataset_meta or {}).get('classes')
        class_name = classes[0] if classes else 'lesion'
        return draw_lesion_overlay(
            self._get_drawer(), rgb, gt, pred_boxes, pred_scores,
            OverlayStyle(self.score_thr, class_name,
                         display_size=self.display_size))

    def _emit(self, name: str, drawn: np.ndarray, step: int,
              out_file: Optional[str] = None) -> None:
        vis = self._visualizer
        vis.set_image(drawn)
        if self.show:
            vis.show(drawn, win_name=name, wait_time=self.wait_time)
        if out_file is not None:
            mmcv.imwrite(drawn[..., ::-1], out_file)
        elif not self.show:
            vis.add_image(name, drawn, step)

    def after_val_iter(self, runner: Runner, batch_idx: int, data_batch: dict,
                       outputs: Sequence[DetDataSample]) -> None:
        """Draw the first sample of every ``interval``-th val iteration."""
        if self.draw is False or not outputs:
            return
        total_curr_iter = runner.iter + batch_idx
        if total_curr_iter % self.interval != 0:
            return
        sample = outputs[0]
        drawn = self.draw_sample(sample)
        name = key_slice_name(sample.img_path, sample.metainfo.get(
            'file_name')) if self.show else 'val_img'
        self._emit(name, drawn, total_curr_iter)

    def after_test_iter(self, runner: Runner, batch_idx: int,
                        data_batch: dict,
                        outputs: Sequence[DetDataSample]) -> None:
        """Draw every test sample; save it when ``test_out_dir`` is set."""
        if self.draw is False:
            return
        if self.test_out_dir is not None and self._test_dir is None:
            self._test_dir = osp.join(runner.work_dir, runner.timestamp,
                                      self.test_out_dir)
            mkdir_or_exist(self._test_dir)
        for sample in outputs:
            self._test_index += 1
            drawn = self.draw_sample(sample)
            name = key_slice_name(sample.img_path,
                                  sample.metainfo.get('file_name'))
            out_file = None
            if self._test_dir is not None:
                out_file = osp.join(self._test_dir, name)
            self._emit(name if self.show else 'test_img', drawn,
                       self._test_index, out_file)
