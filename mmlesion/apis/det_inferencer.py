# Copyright (c) mmlesion contributors. All rights reserved.
"""mmdet's ``DetInferencer`` for the mmlesion 2.5D (DeepLesion) configs."""
import copy
import os.path as osp
from itertools import islice
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Union

import mmcv
import numpy as np
import torch.nn as nn
from mmcv.transforms import Compose
from mmdet.apis import DetInferencer
from mmdet.structures import DetDataSample
from mmdet.utils import ConfigType, get_test_pipeline_cfg
from mmengine.config import Config

from mmlesion.datasets.deeplesion.png_slices import (png_values_to_hu,
                                                     read_hu_png)
from mmlesion.utils.writing.atomic import atomic_save_with
from mmlesion.visualization.lesion_visualizer import (SOFT_TISSUE_WINDOW,
                                                      OverlayStyle,
                                                      draw_lesion_overlay,
                                                      key_slice_name,
                                                      window_of,
                                                      window_to_rgb)

from .detector_loader import (DetectorLoadSettings, config_metainfo,
                              init_lesion_detector)

#: What the inferencer accepts per image (see :class:`LesionDetInferencer`).
LesionInput = Union[str, Path, np.ndarray, dict]


def key_slice_hu(single_input: LesionInput) -> np.ndarray:
    """The key slice of an inference input, in HU, for drawing.

    Args:
        single_input (str | Path | np.ndarray | dict): a slice path, an
            (H, W, N) stack (key slice in the middle channel) or a dict with
            ``img_path``, ``img`` or ``volume`` + ``key_slice``.

    Returns:
        np.ndarray: float32 (H, W) HU.
    """
    if isinstance(single_input, dict):
        if single_input.get('volume') is not None:
            volume = np.asarray(single_input['volume'])
            single_input = volume[int(single_input['key_slice'])]
        elif single_input.get('img') is not None:
            single_input = single_input['img']
        else:
            single_input = single_input['img_path']
    if isinstance(single_input, (str, Path)):
        return read_hu_png(str(single_input))
    image = np.asarray(single_input)
    if image.ndim == 3:
        image = image[..., image.shape[-1] // 2]
    if image.dtype == np.uint16:
        return png_values_to_hu(image, 'input array')
    return image.astype(np.float32)


def _inferencer_config(model: Union[ConfigType, str, Path, None]) -> Config:
    """The inferencer's config: read from a path, copied from a Config."""
    if model is None:
        raise ValueError('LesionDetInferencer needs the config (model=...): '
                         'the 2.5D test pipeline and the model are read '
                         'from it')
    if isinstance(model, (str, Path)):
        if not osp.isfile(str(model)):
            raise FileNotFoundError(f'{model}: config file not found')
        return Config.fromfile(str(model))
    if isinstance(model, Config):
        return copy.deepcopy(model)
    return Config(dict(model))


class LesionDetInferencer(DetInferencer):
    """mmdet's :class:`~mmdet.apis.DetInferencer` for the 2.5D configs
    (docs/mmdet_tools.md): mmdet's interface, the config's own test
    pipeline, whose
    :class:`~mmlesion.datasets.transforms.LesionInferencerLoader` takes a
    key-slice path (or a folder of them), an (H, W, N) array of slices in
    HU, or ``dict(volume=, key_slice=, slice_interval=)`` (or
    ``dict(img_path=, slice_interval=)``). Pictures and ``preds/*.json``
    are named ``<series>_<slice>``; the model is loaded by
    :func:`~mmlesion.apis.detector_loader.init_lesion_detector`.

    Example::

        >>> from mmlesion.apis import LesionDetInferencer
        >>> inferencer = LesionDetInferencer(
        ...     model='configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py',
        ...     weights='work_dirs/demo/epoch_12.pth', device='cpu')
        >>> out = inferencer('data/demo_deeplesion/Images_png/'
        ...                  '000001_01_01/105.png', out_dir='vis')

    Args:
        model (str | Config): the config, or its path.
        weights (str, optional): checkpoint path (None: random weights).
        device (str, optional): e.g. ``'cpu'``, ``'cuda:0'``.
        scope (str, optional): registry scope; None (the default) or the
            config's ``default_scope`` (``'mmdet'`` when it names none).
        palette (str): as mmdet's. Defaults to ``'none'``.
        show_progress (bool): progress bar. Defaults to True.
        window (Sequence[float]): display window (low, high) in HU of the
            pictures. Defaults to the soft-tissue window (-160, 240).

    Raises:
        FileNotFoundError: no config file at ``model``.
        ValueError: no config, a ``scope`` other than the config's, or
            not a 2.5D config.
        CheckpointMismatchError, NonFiniteWeightsError,
        UntrustedCheckpointError: as
            :func:`~mmlesion.apis.detector_loader.init_lesion_detector`.
    """

    def __init__(self,
                 model: Optional[Union[ConfigType, str, Path]] = None,
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 scope: Optional[str] = None,
                 palette: str = 'none',
                 show_progress: bool = True,
                 window: Sequence[float] = SOFT_TISSUE_WINDOW) -> None:
        self.window = window_of(window)
        cfg = _inferencer_config(model)
        own = cfg.get('default_scope') or 'mmdet'
        if scope is not None and scope != own:
            raise ValueError(
                f'{cfg.filename or "<config>"}: scope {scope!r} is not the '
                f"config's default_scope {own!r}, in which its model is "
                'built; leave scope out')
        super().__init__(model=cfg, weights=weights, device=device,
                         scope=own, palette=palette,
                         show_progress=show_progress)

    def _init_model(self, cfg: ConfigType, weights: Optional[str],
                    device: str = 'cpu') -> nn.Module:
        """The model as :func:`init_lesion_detector` builds and loads it
        (mmengine's build and load, which checks nothing, replaced); the
        palette ``palette`` names, else the config's, else random."""
        model = init_lesion_detector(
            cfg, weights, DetectorLoadSettings(device=device)).model
        if self.palette != 'none':
            model.dataset_meta['palette'] = self.palette
        elif 'palette' not in model.dataset_meta:  # a checkpoint's classes
            model.dataset_meta['palette'] = config_metainfo(cfg).get(
                'palette', 'random')
        return model

    def _load_weights_to_model(self, model: nn.Module,
                               checkpoint: Optional[dict],
                               cfg: Optional[ConfigType]) -> None:
        """Never used: :meth:`_init_model` loads the weights."""
        raise NotImplementedError(
            f'{type(self).__name__} loads weights through '
            'mmlesion.apis.init_lesion_detector only')

    def _init_pipeline(self, cfg: ConfigType) -> Compose:
        """The config's test pipeline, taking inference inputs.

        Raises:
            ValueError: the config is not a 2.5D one (no
                ``LoadDeepLesionSlices`` in its test pipeline).
        """
        pipeline_cfg = [dict(t) for t in get_test_pipeline_cfg(cfg)]
        if 'meta_keys' in pipeline_cfg[-1]:  # no img_id at inference
            pipeline_cfg[-1]['meta_keys'] = tuple(
                k for k in pipeline_cfg[-1]['meta_keys'] if k != 'img_id')
        types = [t['type'] for t in pipeline_cfg]
        if 'LesionInferencerLoader' not in types:
            if 'LoadDeepLesionSlices' not in types:
                raise ValueError(
                    f'{type(self).__name__}: the test pipeline ({types}) has '
                    'no LoadDeepLesionSlices: not a 2.5D lesion config. 3D '
                    'configs: tools/infer_volume.py; plain 2D configs: '
                    "mmdet's DetInferencer")
            pipeline_cfg.insert(
                types.index('LoadDeepLesionSlices'),
                dict(type='LesionInferencerLoader'))
        return Compose(pipeline_cfg)

    def _inputs_to_list(self, inputs) -> list:
        """mmdet's expansion (a folder -> its images); a dict is one
        input."""
        if isinstance(inputs, dict):
            return [inputs]
        if isinstance(inputs, Path):
            inputs = str(inputs)
        return super()._inputs_to_list(inputs)

    def _get_chunk_data(self, inputs: Iterable, chunk_size: int):
        """Batches of ``(input, pipeline output)``; dicts may hold a volume
        instead of ``img_path`` (mmdet's version needs one of ``img`` /
        ``img_path``)."""
        inputs = iter(inputs)
        while chunk := [(single_input, self.pipeline(single_input))
                        for single_input in islice(inputs, chunk_size)]:
            yield chunk

    def visualize(self,
                  inputs: List[LesionInput],
                  preds: List[DetDataSample],
                  return_vis: bool = False,
                  show: bool = False,
                  wait_time: int = 0,
                  draw_pred: bool = True,
                  pred_score_thr: float = 0.3,
                  no_save_vis: bool = False,
                  img_out_dir: str = '',
                  **kwargs) -> Optional[List[np.ndarray]]:
        """Draw the detections on the windowed key slices.

        Same arguments as :meth:`mmdet.apis.DetInferencer.visualize`;
        pictures go to ``img_out_dir/vis/<series>_<slice>.png``.

        Returns:
            list[np.ndarray] | None: the RGB pictures with ``return_vis``.
        """
        if no_save_vis:
            img_out_dir = ''
        if not show and img_out_dir == '' and not return_vis:
            return None
        classes = (self.model.dataset_meta or {}).get('classes') or ()
        class_name = classes[0] if len(classes) == 1 else 'lesion'
        results = []
        for single_input, pred in zip(inputs, preds):
            rgb = window_to_rgb(key_slice_hu(single_input), self.window)
            boxes = scores = None
            if draw_pred and 'pred_instances' in pred:
                inst = pred.pred_instances.cpu()
                boxes, scores = inst.bboxes, inst.scores
            drawn = draw_lesion_overlay(self.visualizer, rgb, None, boxes,
                                        scores,
                                        OverlayStyle(pred_score_thr,
                                                     class_name))
            path = single_input.get('img_path') if isinstance(
                single_input, dict) else single_input
            name = (key_slice_name(str(path)) if isinstance(path, (str, Path))
                    else f'{self.num_visualized_imgs:08d}.png')
            self.visualizer.set_image(drawn)
            if show:
                self.visualizer.show(drawn, win_name=name,
                                     wait_time=wait_time)
            if img_out_dir != '':
                atomic_save_with(
                    osp.join(img_out_dir, 'vis', name),
                    lambda p: mmcv.imwrite(drawn[..., ::-1], p))
            results.append(drawn)
            self.num_visualized_imgs += 1
        return results

    def pred2dict(self, data_sample: DetDataSample,
                  pred_out_dir: str = '') -> dict:
        """mmdet's conversion; ``preds/<series>_<slice>.json`` per input
        (``<index>.json`` for arrays)."""
        img_path = data_sample.metainfo.get('img_path')
        unique = (key_slice_name(img_path) if img_path else
                  f'{self.num_predicted_imgs:08d}.png')
        data_sample.set_metainfo(dict(img_path=unique))
        try:
            return super().pred2dict(data_sample, pred_out_dir)
        finally:
            data_sample.set_metainfo(dict(img_path=img_path))
