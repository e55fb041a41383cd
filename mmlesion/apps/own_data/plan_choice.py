# Copyright (c) mmlesion contributors. All rights reserved.
"""One planned value of a dataset plan (:class:`Choice`)."""
from dataclasses import dataclass
from typing import Any, Optional


@dataclass
class Choice:
    """One planned value: the config variable, its value and why.

    Attributes:
        name (str): the config variable.
        value: its value.
        reason (str): why (the comment above it in the config).
        expr (str, optional): the config writes this expression of the
            variables above it instead of the value (a derived value that
            follows a ``--cfg-options`` of those), the value in the comment.
    """
    name: str
    value: Any
    reason: str
    expr: Optional[str] = None
