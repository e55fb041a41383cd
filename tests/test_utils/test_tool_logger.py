# Copyright (c) mmlesion contributors. All rights reserved.
import logging
import warnings

from mmlesion.utils import get_tool_logger


def test_tool_logger_created_once_at_info():
    first = get_tool_logger('mmlesion_test_tool')
    assert first.instance_name == 'mmlesion_test_tool'
    assert first.name == 'mmlesion_test_tool'
    assert first.handlers and all(h.level == logging.INFO
                                  for h in first.handlers)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no "should not accept arguments"
        assert get_tool_logger('mmlesion_test_tool') is first
