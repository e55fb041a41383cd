# Copyright (c) mmlesion contributors. All rights reserved.
"""What a method adds to a whole-scan run: its :class:`WholeScanMethod`,
registered in :data:`WHOLE_SCAN_STEPS` from its home (e.g. LENS's experts
and FPR re-scoring). A method adds its own options to the tools that run
its steps (its ``add_arguments``), reads them back as a typed settings
object (its ``settings``) and turns those into the model adjustments and
the re-scorer a run is handed (its ``steps``); the path of a scan names no
method. Nothing of the paper harness is imported.
"""
import argparse
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple

from mmlesion.utils.method_registry import (MethodPart, MethodRegistry,
                                            required)
from .settings import FindingRescorer, ModelAdjustment

#: (model adjustments, re-scorer or None) a method's settings ask for
Steps = Tuple[Tuple[ModelAdjustment, ...], Optional[FindingRescorer]]


@dataclass(frozen=True)
class WholeScanMethod(MethodPart):
    """One method's part of a whole-scan run.

    Args:
        name (str): the method's name.
        add_arguments (Callable): (parser) -> None: adds the method's
            options to a tool's parser (``tools/infer_volume.py`` calls it
            before parsing).
        settings (Callable): (parsed options) -> the method's typed
            settings; raises ``AttributeError`` on an option it reads that
            the parser lacks.
        steps (Callable): (its settings) -> the model adjustments and the
            re-scorer (or None) they ask for
            (:class:`~.settings.ModelAdjustment`,
            :class:`~.settings.FindingRescorer`).
    """
    add_arguments: Callable[[argparse.ArgumentParser], None] = required()
    settings: Callable[[argparse.Namespace], Any] = required()
    steps: Callable[[Any], Steps] = required()


#: method name -> its :class:`WholeScanMethod`
WHOLE_SCAN_STEPS = MethodRegistry('whole-scan steps', WholeScanMethod)


def whole_scan_steps(args: argparse.Namespace) -> Steps:
    """The model adjustments and the re-scorer (or None) the registered
    methods ask for: each reads its settings from a tool's parsed options
    and turns them into its steps.

    Raises:
        ValueError: an option a method reads that the parser lacks (the
            tool did not call its ``add_arguments``, or a flag was renamed
            on one side only), naming the method and the option; two
            methods asked for a re-scorer, both named.
    """
    adjustments: List[ModelAdjustment] = []
    rescorers = []
    for name, part in WHOLE_SCAN_STEPS.parts().items():
        try:
            settings = part.settings(args)
        except AttributeError as err:
            raise ValueError(
                f'method {name!r} reads the option {err.name!r}, which the '
                "tool's parser lacks: the tool must call its add_arguments, "
                'and its flags and settings must agree') from err
        adjust, rescorer = part.steps(settings)
        adjustments += adjust
        if rescorer is not None:
            rescorers.append((name, rescorer))
    if len(rescorers) > 1:
        raise ValueError('one re-scorer per run: the options ask for those '
                         f'of {[n for n, _ in rescorers]}')
    return tuple(adjustments), rescorers[0][1] if rescorers else None
