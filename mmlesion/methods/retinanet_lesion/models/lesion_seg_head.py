# Copyright (c) mmlesion contributors. All rights reserved.
"""Dense lesion segmentation head (Improved RetinaNet, Sec. 2.2).

"To exploit these generated dense labels, we add two more upsampling layers
[...] and a segmentation prediction layer to the detector" and "our
segmentation uses focal loss with cross-entropy" (Zlocha et al. 2019). The
targets are the GrabCut masks generated from the RECIST diameters
(``results['gt_masks']``, one mask per lesion): the head predicts one
foreground (lesion) probability per pixel and is trained on the union of the
lesion masks of each image.
"""
from typing import List, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig, reduce_mean
from mmengine.model import BaseModule
from torch import Tensor


@MODELS.register_module()
class LesionSegHead(BaseModule):
    """Binary (lesion vs background) segmentation head with focal loss.

    ``num_convs`` 3x3 convs and a 1x1 conv to one logit per pixel on the
    finest pyramid level (P0 of :class:`~mmlesion.methods.retinanet_lesion.models.DenseFPN`);
    the final bias starts at ``prior_prob`` as RetinaNet's.

    Training target: the union of ``gt_instances.masks`` per image, at the
    top-left of the padded batch (padded pixels get zero weight); the focal
    loss (label 0 = lesion) is averaged over the batch's lesion pixels
    (``loss_normalizer='foreground'``, as RetinaNet over positive anchors)
    or over all valid pixels (``'pixels'``).

    Args:
        in_channels (int): channels of the input level.
        feat_channels (int): channels of the hidden convs. Defaults to 64.
        num_convs (int): number of 3x3 convs before the prediction layer.
            Defaults to 1.
        conv_cfg (dict, optional): conv config.
        norm_cfg (dict, optional): norm config of the hidden convs.
        act_cfg (dict): activation of the hidden convs. Defaults to ReLU.
        loss_seg (dict): loss config. Defaults to sigmoid focal loss with
            gamma 2 and alpha 0.25.
        loss_normalizer (str): ``'foreground'`` or ``'pixels'``.
        prior_prob (float): initial foreground probability of the bias.
        init_cfg (dict or list[dict], optional): init config.
    """

    def __init__(self,
                 in_channels: int,
                 feat_channels: int = 64,
                 num_convs: int = 1,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = None,
                 act_cfg: ConfigType = dict(type='ReLU'),
                 loss_seg: ConfigType = dict(
                     type='FocalLoss',
                     use_sigmoid=True,
                     gamma=2.0,
                     alpha=0.25,
                     loss_weight=1.0),
                 loss_normalizer: str = 'foreground',
                 prior_prob: float = 0.01,
                 init_cfg: OptMultiConfig = None) -> None:
        if init_cfg is None:
            init_cfg = dict(
                type='Normal',
                layer='Conv2d',
                std=0.01,
                override=dict(
                    type='Normal',
                    name='conv_seg',
                    std=0.01,
                    bias_prob=prior_prob))
        super().__init__(init_cfg=init_cfg)
        if loss_normalizer not in ('foreground', 'pixels'):
            raise ValueError('LesionSegHead: loss_normalizer must be '
                             f"'foreground' or 'pixels', got "
                             f'{loss_normalizer!r}')
        if not 0. < prior_prob < 1.:
            raise ValueError(
                f'LesionSegHead: prior_prob must be in (0, 1), got '
                f'{prior_prob}')
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.loss_normalizer = loss_normalizer
        self.prior_prob = prior_prob
        convs = []
        channels = in_channels
        for _ in range(num_convs):
            convs.append(
                ConvModule(
                    channels,
                    feat_channels,
                    3,
                    padding=1,
                    conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg,
                    act_cfg=act_cfg))
            channels = feat_channels
        self.convs = nn.Sequential(*convs)
        self.conv_seg = nn.Conv2d(channels, 1, 1)
        self.loss_seg = MODELS.build(loss_seg)

    def forward(self, x: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Predict lesion logits.

        Args:
            x (Tensor | Sequence[Tensor]): the finest feature map
                (B, in_channels, H, W), or a sequence whose first element it
                is.

        Returns:
            Tensor: logits (B, 1, H, W).
        """
        if isinstance(x, (list, tuple)):
            x = x[0]
        return self.conv_seg(self.convs(x))

    @staticmethod
    def _to_input_size(seg_logits: Tensor,
                       batch_data_samples: SampleList) -> Tensor:
        shape = batch_data_samples[0].metainfo.get('batch_input_shape',
                                                   seg_logits.shape[2:])
        size = (int(shape[0]), int(shape[1]))
        if tuple(seg_logits.shape[2:]) != size:
            seg_logits = F.interpolate(
                seg_logits, size=size, mode='bilinear', align_corners=False)
        return seg_logits

    def get_targets(self, batch_data_samples: SampleList, size: Tuple[int,
                                                                      int],
                    device: torch.device) -> Tuple[Tensor, Tensor]:
        """Union of the lesion masks and the valid-pixel mask of each image.

        Args:
            batch_data_samples (list[DetDataSample]): samples with
                ``gt_instances.masks`` and ``img_shape`` in their metainfo.
            size (tuple[int, int]): (H, W) of the padded batch.
            device (torch.device): device of the targets.

        Returns:
            tuple[Tensor, Tensor]: foreground (B, H, W) bool and valid
            (B, H, W) bool (False on the batch padding).
        """
        height, width = size
        fg = torch.zeros((len(batch_data_samples), height, width),
                         dtype=torch.bool,
                         device=device)
        valid = torch.zeros_like(fg)
        for i, data_sample in enumerate(batch_data_samples):
            gt_instances = data_sample.gt_instances
            if 'masks' not in gt_instances:
                raise ValueError(
                    'LesionSegHead needs gt_instances.masks (the GrabCut '
                    'lesion masks) for image '
                    f"{data_sample.metainfo.get('img_path', i)}: add the "
                    'RECIST-to-mask transform (gt_masks) to the train '
                    'pipeline before PackDetInputs.')
            masks = gt_instances.masks
            if isinstance(masks, Tensor):
                mask_t = masks.to(device=device, dtype=torch.bool)
            else:
                mask_t = masks.to_tensor(dtype=torch.bool, device=device)
            if mask_t.dim() != 3:
                raise ValueError('LesionSegHead: gt masks must be (N, H, W), '
                                 f'got {tuple(mask_t.shape)}')
            union = mask_t.any(dim=0)
            h = min(union.shape[0], height)
            w = min(union.shape[1], width)
            fg[i, :h, :w] = union[:h, :w]
            img_h, img_w = data_sample.metainfo.get('img_shape',
                                                    (height, width))[:2]
            valid[i, :min(int(img_h), height), :min(int(img_w), width)] = True
        return fg & valid, valid

    def loss_by_feat(self, seg_logits: Tensor,
                     batch_data_samples: SampleList) -> dict:
        """Focal loss of the logits against the union lesion masks.

        Args:
            seg_logits (Tensor): (B, 1, H, W) logits.
            batch_data_samples (list[DetDataSample]): the batch's samples.

        Returns:
            dict[str, Tensor]: ``loss_seg``.
        """
        seg_logits = self._to_input_size(seg_logits, batch_data_samples)
        fg, valid = self.get_targets(batch_data_samples,
                                     tuple(seg_logits.shape[2:]),
                                     seg_logits.device)
        pred = seg_logits.permute(0, 2, 3, 1).reshape(-1, 1)
        labels = (~fg).reshape(-1).long()  # 0 = lesion, 1 = background
        weight = valid.reshape(-1).to(pred.dtype)
        if self.loss_normalizer == 'foreground':
            count = fg.sum()
        else:
            count = valid.sum()
        avg_factor = reduce_mean(count.to(pred.dtype)).clamp(min=1.).item()
        loss = self.loss_seg(
            pred, labels, weight=weight, avg_factor=avg_factor)
        return dict(loss_seg=loss)

    def loss(self, x: Union[Tensor, Sequence[Tensor]],
             batch_data_samples: SampleList) -> dict:
        """Forward and loss.

        Args:
            x (Tensor | Sequence[Tensor]): the finest feature map.
            batch_data_samples (list[DetDataSample]): the batch's samples.

        Returns:
            dict[str, Tensor]: ``loss_seg``.
        """
        return self.loss_by_feat(self(x), batch_data_samples)

    def predict_by_feat(self, seg_logits: Tensor,
                        batch_data_samples: SampleList) -> List[Tensor]:
        """Lesion probability maps, cropped to each image's ``img_shape``.

        Args:
            seg_logits (Tensor): (B, 1, H, W) logits.
            batch_data_samples (list[DetDataSample]): the batch's samples.

        Returns:
            list[Tensor]: per image a (h, w) probability map in the
            coordinates of the network input (before rescaling to the
            original image).
        """
        probs = self._to_input_size(seg_logits, batch_data_samples).sigmoid()
        results = []
        for i, data_sample in enumerate(batch_data_samples):
            img_h, img_w = data_sample.metainfo.get('img_shape',
                                                    probs.shape[2:])[:2]
            results.append(probs[i, 0, :int(img_h), :int(img_w)])
        return results

    def predict(self, x: Union[Tensor, Sequence[Tensor]],
                batch_data_samples: SampleList) -> List[Tensor]:
        """Forward and :meth:`predict_by_feat`."""
        return self.predict_by_feat(self(x), batch_data_samples)
