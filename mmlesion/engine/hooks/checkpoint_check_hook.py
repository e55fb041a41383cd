# Copyright (c) mmlesion contributors. All rights reserved.
"""Refuse checkpoints that do not fit the model, naming the file."""
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmdet.registry import HOOKS

from mmlesion.utils.checkpoint_loader import check_state_dict_matches


@HOOKS.register_module()
class CheckpointCheckHook(Hook):
    """Check every checkpoint the runner loads against its model.

    mmengine's ``Runner.load_checkpoint`` loads with ``strict=False``: a
    checkpoint of another model (other heads, another backbone) only logs a
    warning about missing / unexpected keys and shape mismatches, and
    ``tools/test.py`` then evaluates randomly initialised heads and prints an
    all-zero FROC with exit status 0. This hook runs in
    ``after_load_checkpoint`` (called by ``load_from`` and by ``resume``,
    before the weights reach the model) and raises
    :class:`mmlesion.utils.CheckpointMismatchError` naming the file and
    listing the offending keys (a strict load through mmengine's own
    ``load_state_dict``, see :func:`mmlesion.utils.check_state_dict_matches`).

    ``tools/train.py`` and ``tools/test.py`` register it for every run; a
    config can also add it to ``custom_hooks``.

    Args:
        filename (str, optional): the checkpoint's path, named in errors.
            Defaults to the runner's ``load_from``.
        strict (bool): if False the hook checks nothing and mmengine only
            logs the problems, e.g. to fine-tune from a detector trained
            with other classes (``tools/train.py --allow-partial-load``).
            Defaults to True.
        allowed_missing (Sequence[str]): key prefixes the checkpoint may
            lack while everything else must fit (``load_from`` of a later
            training stage: ``'fprn_head.'`` when the 3D Aggregated Faster
            R-CNN starts from its RPN stage, Sec. III-E). Defaults to none.
    """

    priority = 'VERY_HIGH'

    def __init__(self, filename: Optional[str] = None,
                 strict: bool = True,
                 allowed_missing: Sequence[str] = ()) -> None:
        self.filename = filename
        self.strict = strict
        self.allowed_missing = tuple(allowed_missing or ())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Compare ``checkpoint['state_dict']`` with the runner's model.

        Args:
            runner (Runner): the runner loading the checkpoint.
            checkpoint (dict): the loaded checkpoint.
        """
        if not self.strict:
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        filename = self.filename or getattr(runner, '_load_from', None) \
            or '<checkpoint>'
        check_state_dict_matches(model, checkpoint, str(filename),
                                 allowed_missing=self.allowed_missing)
