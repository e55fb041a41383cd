# Copyright (c) mmlesion contributors. All rights reserved.
"""Write a :class:`~.dataset_plan.DatasetPlan` as a config inheriting the
plan's base: every planned value a top-level variable with its reason as
the comment above it, then the settings of the base that use them."""
import pprint
import textwrap
from dataclasses import dataclass
from typing import List, Optional, Sequence

from .dataset_plan import DatasetPlan

#: The 2.5D settings after the planned values (the base's pipelines with
#: the planned slices, window and spacing, ``ResampleToSpacing`` instead of
#: the 512 px ``Resize``; the 2D export as ``data_root``).
_TAIL_2D = '''
model = dict(rpn_head=dict(anchor_generator=anchor_generator))
meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
             'flip', 'flip_direction', 'instances', 'spacing',
             'slice_interval', 'num_slices')
train_pipeline = [
    dict(type='LoadDeepLesionSlices', num_slices=num_slices,
         interval_mm=slice_interval_mm),
    dict(type='WindowHU', window=hu_window, out_range=(-1., 1.)),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='ResampleToSpacing', spacing=pixel_spacing),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
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
default_hooks = dict(checkpoint=dict(save_best=None))
'''
_SCHEDULE = '''train_cfg = dict(max_epochs=max_epochs,
                 val_interval=max(1, max_epochs // 10))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=min(500, max_epochs * 10)),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[max(1, max_epochs * 2 // 3),
                     max(1, max_epochs * 11 // 12)], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=lr))
'''


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
    return '\n'.join(lines) + _SCHEDULE
