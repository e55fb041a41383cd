# Copyright (c) mmlesion contributors. All rights reserved.
import contextlib
import io
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


def test_tool_logger_writes_to_the_stdout_of_each_call():
    """A second run after stdout was redirected logs to the new stdout."""
    first, second = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(first):
        get_tool_logger('mmlesion_test_stream').info('run one')
    with contextlib.redirect_stdout(second):
        get_tool_logger('mmlesion_test_stream').info('run two')
    assert 'run one' in first.getvalue() and 'run two' not in first.getvalue()
    assert 'run two' in second.getvalue()


def test_a_tool_logger_asked_for_again_is_the_current_instance():
    """The library logs to ``MMLogger.get_current_instance()``: after another
    logger (a Runner's) was created, the tool's run logs to the tool's."""
    from mmengine.logging import MMLogger
    tool = get_tool_logger('mmlesion_test_current')
    MMLogger.get_instance('mmlesion_test_other_runner')
    assert MMLogger.get_current_instance() is not tool
    assert get_tool_logger('mmlesion_test_current') is tool
    assert MMLogger.get_current_instance() is tool
