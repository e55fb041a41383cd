# Copyright (c) mmlesion contributors. All rights reserved.
"""Refuse checkpoints that do not fit the model, naming the file."""
from typing import Mapping, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop
from mmdet.registry import HOOKS

from mmlesion.utils.checkpoints.loader import check_state_dict_matches


@HOOKS.register_module()
class CheckpointCheckHook(Hook):
    """Check every checkpoint the runner loads against its model
    (mmengine's ``strict=False`` would evaluate randomly initialised
    heads), except where a training that does not resume sets
    ``allow_partial_load = True``.

    Args:
        filename (str, optional): the checkpoint's path, named in errors.
            Defaults to the runner's ``load_from``.
        strict (bool, optional): True checks every load, False checks
            nothing (mmengine then only logs the problems). Defaults to
            None: strict unless the runner trains (not resumes) and its
            config sets ``allow_partial_load = True``.
        allowed_missing (Sequence[str], optional): key prefixes the
            checkpoint may lack (``load_from`` of a later training stage:
            ``'fprn_head.'`` when the 3D Aggregated Faster R-CNN starts from
            its RPN stage, Sec. III-E). Defaults to None: the config's
            ``load_from_allowed_missing`` when training without resuming.
    """

    priority = 'VERY_HIGH'

    def __init__(self, filename: Optional[str] = None,
                 strict: Optional[bool] = None,
                 allowed_missing: Optional[Sequence[str]] = None) -> None:
        self.filename = filename
        self.strict = strict
        self.allowed_missing = None if allowed_missing is None else tuple(
            allowed_missing)

    def is_strict(self, runner) -> bool:
        """Whether the loads of ``runner`` are checked: ``strict`` if
        given, else True unless a fresh training allows a partial load."""
        if self.strict is not None:
            return bool(self.strict)
        return self._fresh_training_cfg(runner).get(
            'allow_partial_load', False) is not True

    @staticmethod
    def _fresh_training_cfg(runner) -> Mapping:
        """The runner's config when it trains without resuming, else ``{}``
        (a resume, val / test: the weights must fit)."""
        cfg = getattr(runner, 'cfg', None)
        fresh = getattr(runner, '_resume', False) is not True and isinstance(
            getattr(runner, '_train_loop', None), BaseLoop)
        return cfg if fresh and isinstance(cfg, (Config, dict)) else {}

    def missing_allowed(self, runner) -> Tuple[str, ...]:
        """Key prefixes the checkpoint of ``runner`` may lack:
        ``allowed_missing`` if given, else the config's
        ``load_from_allowed_missing`` in a fresh training."""
        if self.allowed_missing is not None:
            return self.allowed_missing
        return tuple(
            self._fresh_training_cfg(runner).get('load_from_allowed_missing')
            or ())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Compare ``checkpoint['state_dict']`` with the runner's model."""
        if not self.is_strict(runner):
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        filename = self.filename or getattr(runner, '_load_from', None) \
            or '<checkpoint>'
        check_state_dict_matches(model, checkpoint, str(filename),
                                 allowed_missing=self.missing_allowed(runner))


def set_checkpoint_check_hook(runner, hook: CheckpointCheckHook) -> None:
    """Give ``runner`` exactly one :class:`CheckpointCheckHook`: ``hook``
    (replacing the config's).

    Args:
        runner (Runner): a built runner.
        hook (CheckpointCheckHook): the check to use.
    """
    runner._hooks[:] = [
        h for h in runner._hooks if not isinstance(h, CheckpointCheckHook)
    ]
    runner.register_hook(hook)
