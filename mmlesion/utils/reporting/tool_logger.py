# Copyright (c) mmlesion contributors. All rights reserved.
"""The logger of a command-line tool."""
import logging
import sys

from mmengine.logging import MMLogger


def get_tool_logger(name: str) -> MMLogger:
    """The tool's :class:`MMLogger` at INFO level, created on first use.

    ``MMLogger.get_instance`` warns when an existing instance is asked for
    with arguments, so a tool whose ``main`` runs twice in one process (the
    tests, a notebook) takes the existing one as it is. Its console handler
    is pointed at the ``sys.stdout`` of the moment on every call: mmengine
    binds the stream once, at creation, so a tool run again after stdout was
    redirected (``contextlib.redirect_stdout``, a notebook cell, pytest's
    capture) would otherwise write to the stream of its first run. It also
    becomes mmengine's current instance again
    (``MMLogger.get_current_instance``, which the library's functions log
    to): mmengine makes only a newly created instance current, so a tool run
    a second time after a Runner was built in the same process would send
    the library's lines to that Runner's logger.

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
