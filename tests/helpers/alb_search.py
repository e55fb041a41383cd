# Copyright (c) mmlesion contributors. All rights reserved.
"""Tiny pieces for testing the ALB search (:mod:`mmlesion.methods.elixirnet.nas`).

A Faster R-CNN with a search-mode ALB head (ResNet-18 layout with 8 base
channels, 16-channel FPN), its plain-mmdet "baseline" twin, a fake 3-slice
dataset registered as ``NASFakeLesionDataset`` (64 x 64 inputs) and a
complete runner config for :class:`mmlesion.methods.elixirnet.nas.ALBSearchLoop`. Importing
this module registers the fake dataset; nothing else imports it.
"""
from typing import Optional

import torch
from mmdet.registry import DATASETS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.dataset import BaseDataset
from mmengine.structures import InstanceData

IMG_SIZE = 64


@DATASETS.register_module(force=True)
class NASFakeLesionDataset(BaseDataset):
    """``num_samples`` fake windowed 3-slice images with one bright lesion.

    Each sample is packed as ``PackDetInputs`` would (``inputs``,
    ``data_samples``); data_infos carry ``patient_id`` (two images per
    patient) for grouped splits.
    """

    METAINFO = dict(classes=('lesion', ))

    def __init__(self, num_samples: int = 8, **kwargs) -> None:
        self.num_samples = num_samples
        kwargs.setdefault('serialize_data', False)
        super().__init__(**kwargs)

    def load_data_list(self) -> list:
        return [
            dict(img_id=i,
                 img_path=f'fake_{i}.png',
                 patient_id=i // 2,
                 width=IMG_SIZE,
                 height=IMG_SIZE) for i in range(self.num_samples)
        ]

    def prepare_data(self, idx: int) -> dict:
        info = self.get_data_info(idx)
        gen = torch.Generator().manual_seed(int(info['img_id']))
        img = torch.rand(3, IMG_SIZE, IMG_SIZE, generator=gen) * 0.2 - 1.0
        size = int(torch.randint(10, 24, (1, ), generator=gen))
        x1, y1 = (int(v) for v in torch.randint(
            2, IMG_SIZE - size - 2, (2, ), generator=gen))
        img[:, y1:y1 + size, x1:x1 + size] += 1.0
        sample = DetDataSample(metainfo=dict(img_id=info['img_id'],
                                             img_path=info['img_path'],
                                             ori_shape=(IMG_SIZE, IMG_SIZE),
                                             img_shape=(IMG_SIZE, IMG_SIZE),
                                             scale_factor=(1., 1.)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor(
            [[x1, y1, x1 + size, y1 + size]], dtype=torch.float32),
                                           labels=torch.tensor([0]))
        sample.ignored_instances = InstanceData(bboxes=torch.zeros((0, 4)),
                                                labels=torch.zeros(
                                                    (0, ), dtype=torch.long))
        return dict(inputs=img, data_samples=sample)


def tiny_detector_cfg(bbox_head: Optional[dict] = None,
                      roi_head_type: str = 'ALBRoIHead') -> dict:
    """A Faster R-CNN (ResNet-18 layout, 8 base channels, 16-channel FPN).

    Args:
        bbox_head (dict, optional): box head config; defaults to a search
            ALB head (``D = 4``).
        roi_head_type (str): RoI head type.
    """
    if bbox_head is None:
        bbox_head = dict(type='ALBBBoxHead', search=True)
    head = dict(in_channels=16,
                roi_feat_size=7,
                num_classes=1,
                bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                                target_means=[0., 0., 0., 0.],
                                target_stds=[0.1, 0.1, 0.2, 0.2]),
                reg_class_agnostic=False,
                loss_cls=dict(type='CrossEntropyLoss',
                              use_sigmoid=False,
                              loss_weight=1.0),
                loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))
    if bbox_head['type'] in ('ALBBBoxHead', 'RTMBBoxHead'):
        head.update(conv_out_channels=16)
    head.update(bbox_head)
    return dict(
        type='FasterRCNN',
        data_preprocessor=dict(type='DetDataPreprocessor',
                               mean=[0., 0., 0.],
                               std=[1., 1., 1.],
                               bgr_to_rgb=False,
                               pad_size_divisor=32),
        backbone=dict(
            type='ResNet',
            depth=18,
            base_channels=8,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            frozen_stages=-1,
            norm_cfg=dict(type='BN', requires_grad=True),
            # train-mode BN so the test sees the loop keep frozen BN in eval
            norm_eval=False,
            style='pytorch',
            init_cfg=None),
        neck=dict(type='FPN',
                  in_channels=[8, 16, 32, 64],
                  out_channels=16,
                  num_outs=5),
        rpn_head=dict(type='RPNHead',
                      in_channels=16,
                      feat_channels=16,
                      anchor_generator=dict(type='AnchorGenerator',
                                            scales=[2, 4],
                                            ratios=[0.5, 1.0, 2.0],
                                            strides=[4, 8, 16, 32, 64]),
                      bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                                      target_means=[0., 0., 0., 0.],
                                      target_stds=[1.0, 1.0, 1.0, 1.0]),
                      loss_cls=dict(type='CrossEntropyLoss',
                                    use_sigmoid=True,
                                    loss_weight=1.0),
                      loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        roi_head=dict(type=roi_head_type,
                      bbox_roi_extractor=dict(type='SingleRoIExtractor',
                                              roi_layer=dict(type='RoIAlign',
                                                             output_size=7,
                                                             sampling_ratio=0),
                                              out_channels=16,
                                              featmap_strides=[4, 8, 16, 32]),
                      bbox_head=head),
        train_cfg=dict(rpn=dict(assigner=dict(type='MaxIoUAssigner',
                                              pos_iou_thr=0.7,
                                              neg_iou_thr=0.3,
                                              min_pos_iou=0.3,
                                              match_low_quality=True,
                                              ignore_iof_thr=-1),
                                sampler=dict(type='RandomSampler',
                                             num=64,
                                             pos_fraction=0.5,
                                             neg_pos_ub=-1,
                                             add_gt_as_proposals=False),
                                allowed_border=-1,
                                pos_weight=-1,
                                debug=False),
                       rpn_proposal=dict(nms_pre=200,
                                         max_per_img=32,
                                         nms=dict(type='nms',
                                                  iou_threshold=0.7),
                                         min_bbox_size=0),
                       rcnn=dict(assigner=dict(type='MaxIoUAssigner',
                                               pos_iou_thr=0.5,
                                               neg_iou_thr=0.5,
                                               min_pos_iou=0.5,
                                               match_low_quality=False,
                                               ignore_iof_thr=-1),
                                 sampler=dict(type='RandomSampler',
                                              num=16,
                                              pos_fraction=0.25,
                                              neg_pos_ub=-1,
                                              add_gt_as_proposals=True),
                                 pos_weight=-1,
                                 debug=False)),
        test_cfg=dict(rpn=dict(nms_pre=200,
                               max_per_img=32,
                               nms=dict(type='nms', iou_threshold=0.7),
                               min_bbox_size=0),
                      rcnn=dict(score_thr=0.0,
                                nms=dict(type='nms', iou_threshold=0.5),
                                max_per_img=10)))


def baseline_detector_cfg() -> dict:
    """The same detector with mmdet's plain 2-fc box head (the baseline
    whose backbone / neck / RPN the search starts from)."""
    return tiny_detector_cfg(bbox_head=dict(type='Shared2FCBBoxHead',
                                            fc_out_channels=32),
                             roi_head_type='StandardRoIHead')


def search_cfg(work_dir: str,
               max_epochs: int = 1,
               num_samples: int = 4,
               load_from: Optional[str] = None) -> Config:
    """A complete runner config for :class:`ALBSearchLoop` on fake data."""
    return Config(
        dict(
            default_scope='mmdet',
            work_dir=work_dir,
            model=tiny_detector_cfg(),
            train_dataloader=dict(batch_size=2,
                                  num_workers=0,
                                  sampler=dict(type='DefaultSampler',
                                               shuffle=True),
                                  collate_fn=dict(type='pseudo_collate'),
                                  dataset=dict(type='NASFakeLesionDataset',
                                               num_samples=num_samples)),
            train_cfg=dict(type='ALBSearchLoop', max_epochs=max_epochs),
            optim_wrapper=dict(constructor='ALBSearchOptimWrapperConstructor',
                               weight=dict(type='OptimWrapper',
                                           optimizer=dict(type='SGD',
                                                          lr=0.02,
                                                          momentum=0.9,
                                                          weight_decay=3e-4),
                                           clip_grad=dict(max_norm=5.0)),
                               arch=dict(type='OptimWrapper',
                                         optimizer=dict(type='Adam',
                                                        lr=3e-2,
                                                        betas=(0.5, 0.999),
                                                        weight_decay=1e-3))),
            param_scheduler=dict(weight=[
                dict(type='CosineAnnealingLR',
                     eta_min=0.0,
                     by_epoch=True,
                     begin=0,
                     convert_to_iter_based=True)
            ],
                                 arch=[]),
            default_hooks=dict(timer=dict(type='IterTimerHook'),
                               logger=dict(type='LoggerHook', interval=1),
                               param_scheduler=dict(type='ParamSchedulerHook'),
                               checkpoint=dict(type='CheckpointHook',
                                               interval=1),
                               sampler_seed=dict(type='DistSamplerSeedHook')),
            env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo')),
            randomness=dict(seed=0),
            log_level='WARNING',
            load_from=load_from))


def clone_state(module: torch.nn.Module) -> dict:
    """A detached copy of a module's state dict."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
