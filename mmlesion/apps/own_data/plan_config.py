# Copyright (c) mmlesion contributors. All rights reserved.
"""Write a :class:`~.dataset_plan.DatasetPlan` as a config inheriting the
plan's base: every planned value a top-level variable with its reason as
the comment above it (a derived one as an expression of those above it),
then the settings of the base that use them, and ``planned_names``: the
variables a ``--cfg-options NAME=VALUE`` sets by running the config again
with that value (:mod:`mmlesion.utils.configs.planned_variables`), so that
everything that uses them follows."""
import pprint
import textwrap
from dataclasses import dataclass
from typing import List, Optional, Sequence

from .dataset_plan import DatasetPlan

#: The 2.5D settings after the planned values (the backbone's depth and
#: weights (from random weights nothing frozen, BN trained), the
#: FPN levels the anchors need, the heads' channels and sampled RoIs, the
#: base's pipelines with the planned slices, window and spacing,
#: ``ResampleToSpacing`` instead of the 512 px ``Resize``, training patches
#: where planned, the base's flips and affine augmentation kept; the 2D
#: export as ``data_root``).
_TAIL_2D = '''
model = dict(
    backbone=dict(
        depth=backbone_depth,
        init_cfg=dict(type='Pretrained',
                      checkpoint=f'torchvision://resnet{backbone_depth}')
        if pretrained else None,
        frozen_stages=1 if pretrained else -1,
        norm_eval=bool(pretrained)),
    neck=dict(
        in_channels=([64, 128, 256, 512] if backbone_depth < 50 else
                     [256, 512, 1024, 2048]),
        out_channels=head_channels,
        num_outs=num_levels, end_level=num_levels - 1 if num_levels < 4
        else -1),
    rpn_head=dict(anchor_generator=anchor_generator,
                  in_channels=head_channels, feat_channels=head_channels),
    roi_head=dict(
        bbox_roi_extractor=dict(
            featmap_strides=anchor_generator['strides'][:4],
            out_channels=head_channels),
        bbox_head=dict(in_channels=head_channels,
                       fc_out_channels=4 * head_channels)),
    train_cfg=dict(rcnn=dict(sampler=dict(num=rcnn_rois))))
meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
             'flip', 'flip_direction', 'instances', 'spacing',
             'slice_interval', 'num_slices')
train_pipeline = [
    dict(type='LoadDeepLesionSlices', num_slices=num_slices,
         interval_mm=slice_interval_mm),
    dict(type='WindowHU', window=hu_window, out_range=(-1., 1.)),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='ResampleToSpacing', spacing=pixel_spacing),
    *([dict(type='LesionPatchCrop', crop_size=(patch_size, patch_size))]
      if patch_size else []),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='MultiSliceRandomAffine', max_rotate_degree=5.73,
         max_shear_degree=5.73, max_translate_ratio=0.1,
         scaling_ratio_range=(0.8, 1.2)),
    dict(type='PackDetInputs', meta_keys=meta_keys)
]
test_pipeline = [
    dict(type='LesionInferencerLoader'),
    dict(type='LoadDeepLesionSlices', num_slices=num_slices,
         interval_mm=slice_interval_mm),
    dict(type='WindowHU', window=hu_window, out_range=(-1., 1.)),
    dict(type='ResampleToSpacing', spacing=pixel_spacing),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=meta_keys)
]
train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
test_dataloader = dict(
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
'''
_VAL_2D = '''val_dataloader = dict(
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
'''
#: The 3D-AG settings after the planned values: the common annotation
#: file's scans of each split (``indices``), whole scans at test time.
_TAIL_3D = '''
load_from = None
model = dict(
    rpn_head=dict(anchor_generator=dict(sizes=anchor_sizes)),
    test_cfg=dict(window_size=crop, overlap=overlap))
train_pipeline = [
    dict(type='LoadCTVolume', spacing_zyx=spacing_zyx),
    dict(type='RandomCrop3D', crop_size=crop, pos_prob=0.7, margin=8,
         pad_value=-1024.),
    dict(type='RandomFlip3D', prob=0.5, axes=(0, 1, 2)),
    dict(type='WindowHU', window=hu_window, out_range=(-1., 1.)),
    dict(type='PackVolumeDetInputs')
]
test_pipeline = [
    dict(type='LoadCTVolume', spacing_zyx=spacing_zyx),
    dict(type='WindowHU', window=hu_window, out_range=(-1., 1.)),
    dict(type='PackVolumeDetInputs')
]
test_dataset = dict(type='CTVolumeDataset', data_root=data_root,
                    ann_file=ann_file, test_mode=True,
                    pipeline=test_pipeline)
train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(_delete_=True, type='CTVolumeDataset', data_root=data_root,
                 ann_file=ann_file, indices=train_scans,
                 filter_cfg=dict(filter_empty_gt=False),
                 pipeline=train_pipeline))
test_dataloader = dict(
    dataset=dict(_delete_=True, indices=test_scans, **test_dataset))
'''
_VAL_3D = '''val_dataloader = dict(
    dataset=dict(_delete_=True, indices=val_scans, **test_dataset))
'''
_NO_VAL = '''val_dataloader = None
val_cfg = None
val_evaluator = None
'''
#: The planned schedule: epochs holding the planned iterations, warm-up and
#: lr steps in iterations, a checkpoint every ``checkpoint_interval``
#: epochs of which the last is kept (and the best, where validated).
_SCHEDULE = '''train_cfg = dict(max_epochs=max_epochs,
                 val_interval=checkpoint_interval)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='MultiStepLR', by_epoch=False, begin=0, milestones=lr_steps,
         gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=lr))
default_hooks = dict(checkpoint=dict(interval=checkpoint_interval,
                                     max_keep_ckpts=1{best}))
'''

_NAMES = '# what --cfg-options NAME=VALUE sets by running this file again\n'


@dataclass
class PlanConfigSettings:
    """What :func:`format_plan_config` writes besides the plan.

    Args:
        base (str): ``_base_`` as written (relative to the written file).
        data_root (str): the 2D export (2.5D) or the annotation file's
            folder (3D).
        header (Sequence[str]): comment lines on top (provenance).
        has_val (bool): the dataset has a val split (else no validation;
            the last epoch is the one tested).
        ann_file (str, optional): 3D: the annotation file, relative to
            ``data_root``.
        scans (dict, optional): 3D: ``train`` / ``val`` / ``test`` -> the
            indices of the annotation file's scans of that split.
    """
    base: str
    data_root: str
    header: Sequence[str] = ()
    has_val: bool = True
    ann_file: Optional[str] = None
    scans: Optional[dict] = None


def _comment(text: str) -> List[str]:
    return ['# ' + line for line in textwrap.wrap(
        text, 77, break_on_hyphens=False, break_long_words=False)]


def format_plan_config(plan: DatasetPlan,
                       settings: PlanConfigSettings) -> str:
    """The config text of ``plan`` (module doc).

    Args:
        plan (DatasetPlan): the choices.
        settings (PlanConfigSettings): base, data, provenance.

    Returns:
        str: the config file's text.
    """
    lines = sum((_comment(h) or ['#'] for h in settings.header), [])
    lines += [f'_base_ = {settings.base!r}', '']
    for choice in plan.choices:
        lines += _comment(f'{choice.name}: {choice.reason}')
        value = choice.value
        if choice.name == 'detector':
            value = f'{value} ({plan.base})'
        if choice.expr is not None:
            lines += [f'# ({choice.name} = {value!r} as planned)',
                      f'{choice.name} = {choice.expr}', '']
            continue
        lines += [f'{choice.name} = ' + pprint.pformat(value, width=70,
                                                      sort_dicts=False), '']
    lines.append(f'data_root = {settings.data_root!r}')
    if plan.family == '3d':
        lines.append(f'ann_file = {settings.ann_file!r}')
        for split in ('train', 'val', 'test'):
            lines.append(f'{split}_scans = '
                         f'{list(settings.scans.get(split, []))!r}')
        lines.append(_TAIL_3D + (_VAL_3D if settings.has_val else _NO_VAL))
    else:
        lines.append(_TAIL_2D + (_VAL_2D if settings.has_val else _NO_VAL))
    names = [c.name for c in plan.choices if c.name != 'detector']
    best = '' if settings.has_val else ', save_best=None'
    return ('\n'.join(lines) + _SCHEDULE.format(best=best) + _NAMES +
            f'planned_names = {names!r}\n')
