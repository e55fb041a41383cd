# Copyright (c) mmlesion contributors. All rights reserved.
"""The logger of a command-line tool."""
import logging
import sys

from mmengine.logging import MMLogger


def get_tool_logger(name: str) -> MMLogger:
    """The tool's :class:`MMLogger` at INFO level, created on first use.

    A tool whose ``main`` runs twice in one process (tests, a notebook)
    gets the existing instance, made mmengine's current instance again (the
    library logs to it) and with its console handler pointed at the
    ``sys.stdout`` of the moment (mmengine binds the stream at creation).

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
