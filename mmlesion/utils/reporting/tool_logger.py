# Copyright (c) mmlesion contributors. All rights reserved.
"""The logger of a command-line tool."""
import logging
import sys
from contextlib import contextmanager
from typing import Iterator

from mmengine.logging import MMLogger


def get_tool_logger(name: str) -> MMLogger:
    """The tool's :class:`MMLogger` at INFO level, created on first use;
    a second call makes it mmengine's current instance again, its console
    handler on the ``sys.stdout`` of the moment.

    Args:
        name (str): instance and logger name, e.g. ``'eval_luna16'``.

    Returns:
        MMLogger: the logger.
    """
    if MMLogger.check_instance_created(name):
        logger = MMLogger.get_instance(name)
        # the newest entry of mmengine's (ordered) registry is the current
        # instance; mmengine offers no public way to make an old one current
        instances = MMLogger._instance_dict
        instances[name] = instances.pop(name)
    else:
        logger = MMLogger.get_instance(
            name, logger_name=name, log_level='INFO')
    for handler in logger.handlers:
        if (type(handler) is logging.StreamHandler
                and handler.stream is not sys.stderr):
            # not setStream: it flushes the old stream, which may be closed
            handler.stream = sys.stdout
    return logger


@contextmanager
def call_logger(name: str) -> Iterator[MMLogger]:
    """The logger of one call of a library entry point: mmengine's current
    instance (else one made and dropped afterwards), its console handlers
    on the call's ``sys.stdout`` and put back afterwards, so none writes
    to a stream closed since.

    Args:
        name (str): instance and logger name of the one made, e.g.
            ``'convert_dataset'``.

    Yields:
        MMLogger: the logger.
    """
    made = not MMLogger._instance_dict
    logger = get_tool_logger(name) if made else (
        MMLogger.get_current_instance())
    streams = [(h, h.stream) for h in logger.handlers
               if type(h) is logging.StreamHandler
               and h.stream is not sys.stderr]
    for handler, _ in streams:
        handler.stream = sys.stdout  # not setStream: see get_tool_logger
    try:
        yield logger
    finally:
        for handler, stream in streams:
            handler.stream = stream
        if made:
            MMLogger._instance_dict.pop(name, None)
