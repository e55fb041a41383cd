# Copyright (c) mmlesion contributors. All rights reserved.
"""The val / test log line keeps the headline; scalars keep everything."""
from unittest.mock import MagicMock

from mmengine.logging import MessageHub

from mmdet.registry import LOG_PROCESSORS
from mmlesion.engine.runner import HeadlineLogProcessor
from mmlesion.testing import get_config

HEADLINE = ['froc/sens@0.5', 'froc/sens@4', 'froc/mean@0.5-4',
            'froc/bbox_mAP', 'froc/bbox_mAP_50']
BREAKDOWN = ['froc/sens@4_type_liver', 'froc/mean@0.5-4_type_soft_tissue',
             'froc/sens@0.5_size_lt10mm', 'froc/bbox_mAP_75',
             'froc/bbox_mAP_s']


def _runner():
    runner = MagicMock()
    runner.message_hub = MessageHub.get_instance('test_headline_log')
    for i, key in enumerate(HEADLINE + BREAKDOWN):
        runner.message_hub.update_scalar(f'val/{key}', 0.125 * (i % 8))
    runner.message_hub.update_scalar('val/time', 0.5)
    runner.message_hub.update_scalar('val/data_time', 0.1)
    runner.message_hub.update_scalar('train/loss', 1.0)
    runner.epoch = 3
    runner.val_loop.dataloader = [0] * 4
    return runner


def test_val_line_has_headline_and_tag_has_all():
    processor = LOG_PROCESSORS.build(
        dict(type='HeadlineLogProcessor', window_size=50, by_epoch=True))
    assert isinstance(processor, HeadlineLogProcessor)
    tag, line = processor.get_log_after_epoch(_runner(), 4, 'val')
    for key in HEADLINE:
        assert f'{key}: ' in line, key
    for key in BREAKDOWN:
        assert f'{key}: ' not in line, key
    assert 'time: ' in line
    # the scalars (visualizer, JSON log) still get every key
    assert set(HEADLINE + BREAKDOWN) <= set(tag)
    # a second call (next validation) behaves the same
    assert processor.get_log_after_epoch(_runner(), 4, 'val')[1] == line


def test_plain_log_processor_would_log_everything():
    processor = LOG_PROCESSORS.build(
        dict(type='LogProcessor', window_size=50, by_epoch=True))
    _, line = processor.get_log_after_epoch(_runner(), 4, 'val')
    assert all(f'{key}: ' in line for key in BREAKDOWN)


def test_configs_use_it():
    for name in ('demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py',
                 'elixirnet/demo/elixirnet_r18-tiny_fpn_1x_deeplesion-demo.py',
                 'retinanet_lesion/demo/retinanet_r18-tiny_fpn_1x_deeplesion-demo.py'):
        assert get_config(name).log_processor.type == 'HeadlineLogProcessor'
