# Copyright (c) mmlesion contributors. All rights reserved.
"""mmdet's ``DetLocalVisualizer`` for windowed CT inputs."""
import os.path as osp
from typing import Optional, Sequence, Tuple

import numpy as np
from mmdet.registry import VISUALIZERS
from mmdet.visualization import DetLocalVisualizer

from .lesion_visualizer import key_slice_name
from .relation_graph import slice_to_gray


@VISUALIZERS.register_module()
class LesionLocalVisualizer(DetLocalVisualizer):
    """``DetLocalVisualizer`` that draws the network input of a CT config.

    mmdet casts the image to ``uint8``, which turns float inputs black;
    here a float image's middle channel (the key slice) is shown as gray
    from ``input_range``, and one with fewer channels than the sample's
    ``num_slices`` is refused. An ``out_file`` named after the slice file
    is saved as ``<series>_<slice>.png`` (slice names repeat).

    Args:
        name (str): the instance name (mmengine's ``ManagerMixin``).
            Defaults to ``'visualizer'``.
        input_range (Sequence[float]): ``(low, high)`` of the float inputs
            shown black and white. Defaults to (-1, 1) (``WindowHU``'s
            ``out_range``).
        **kwargs: ``DetLocalVisualizer``'s arguments.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 input_range: Sequence[float] = (-1., 1.),
                 **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        if len(input_range) != 2 or not float(input_range[1]) > float(
                input_range[0]):
            raise ValueError('LesionLocalVisualizer: input_range must be '
                             f'(low, high) with low < high, got {input_range}')
        self.input_range: Tuple[float, float] = (float(input_range[0]),
                                                 float(input_range[1]))

    def to_display(self, image: np.ndarray) -> np.ndarray:
        """A ``uint8`` RGB picture (H, W, 3) of an (H, W) or (H, W, C)
        ``image`` (a ``uint8`` one unchanged)."""
        image = np.asarray(image)
        if image.dtype == np.uint8:
            return image
        gray = slice_to_gray(image, value_range=self.input_range)
        gray = np.rint(gray * 255.).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)

    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample=None,
                       *args,
                       out_file: Optional[str] = None,
                       **kwargs) -> None:
        """``DetLocalVisualizer.add_datasample`` on :meth:`to_display`
        (the arguments are mmdet's)."""
        num_slices = (data_sample.metainfo.get('num_slices')
                      if data_sample is not None else None)
        image = np.asarray(image)
        if (image.dtype != np.uint8 and num_slices is not None
                and image.ndim == 3 and image.shape[-1] != num_slices):
            where = data_sample.metainfo.get('img_path')
            raise ValueError(
                f'{type(self).__name__}: {where} is a {num_slices}-slice '
                f'input (key slice: channel {num_slices // 2}) but '
                f'{image.shape[-1]} channels were given to draw (mmdet\'s '
                'browse_dataset.py passes channels [2, 1, 0]): use '
                'tools/analysis_tools/browse_dataset.py of mmlesion for '
                'this config')
        if out_file is not None and data_sample is not None:
            img_path = data_sample.metainfo.get('img_path')
            if img_path and osp.basename(out_file) == osp.basename(img_path):
                out_file = osp.join(
                    osp.dirname(out_file),
                    key_slice_name(img_path,
                                   data_sample.metainfo.get('file_name')))
        super().add_datasample(name, self.to_display(image), data_sample,
                               *args, out_file=out_file, **kwargs)
