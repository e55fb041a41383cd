# Copyright (c) mmlesion contributors. All rights reserved.
"""The logger of a command-line tool."""
from mmengine.logging import MMLogger


def get_tool_logger(name: str) -> MMLogger:
    """The tool's :class:`MMLogger` at INFO level, created on first use.

    ``MMLogger.get_instance`` warns when an existing instance is asked for
    with arguments, so a tool whose ``main`` runs twice in one process (the
    tests) takes the existing one as it is.

    Args:
        name (str): instance and logger name, e.g. ``'eval_luna16'``.

    Returns:
        MMLogger: the logger.
    """
    if MMLogger.check_instance_created(name):
        return MMLogger.get_instance(name)
    return MMLogger.get_instance(name, logger_name=name, log_level='INFO')
