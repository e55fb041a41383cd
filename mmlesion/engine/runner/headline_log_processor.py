# Copyright (c) mmlesion contributors. All rights reserved.
"""A LogProcessor whose validation / test line shows the headline only."""
import re
from typing import Sequence, Tuple

from mmengine.runner import LogProcessor
from mmdet.registry import LOG_PROCESSORS

#: Breakdown keys of :class:`mmlesion.evaluation.FROCMetric` (lesion types,
#: sizes) and the secondary COCO numbers.
DEFAULT_HIDDEN_KEYS = (r'_type_[^/]+$', r'_size_[^/]+$',
                       r'bbox_mAP_(75|s|m|l)$')


@LOG_PROCESSORS.register_module()
class HeadlineLogProcessor(LogProcessor):
    """mmengine's ``LogProcessor`` with a short validation / test line:
    the ~100 keys of ``FROCMetric`` matching ``hidden_keys`` are left out
    of the text line only (the scalars and the JSON log keep every key).

    Args:
        hidden_keys (Sequence[str]): regular expressions (``re.search``) of
            the metric keys left out of the val / test line.
        **kwargs: arguments of :class:`mmengine.runner.LogProcessor`.
    """

    def __init__(self,
                 hidden_keys: Sequence[str] = DEFAULT_HIDDEN_KEYS,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.hidden_keys = tuple(hidden_keys)
        self._patterns = [re.compile(p) for p in self.hidden_keys]
        self._text_only = False

    def _collect_scalars(self, custom_cfg, runner, mode: str,
                         reserve_prefix: bool = False) -> dict:
        tag = super()._collect_scalars(custom_cfg, runner, mode,
                                       reserve_prefix)
        if self._text_only:
            tag = type(tag)((k, v) for k, v in tag.items()
                            if not any(p.search(k) for p in self._patterns))
        return tag

    def get_log_after_epoch(self,
                            runner,
                            batch_idx: int,
                            mode: str,
                            with_non_scalar: bool = False) -> Tuple[dict, str]:
        """mmengine's tag with every key, and the log line without the
        hidden ones."""
        tag, _ = super().get_log_after_epoch(runner, batch_idx, mode,
                                             with_non_scalar)
        self._text_only = True
        try:
            _, log_str = super().get_log_after_epoch(runner, batch_idx, mode,
                                                     with_non_scalar)
        finally:
            self._text_only = False
        return tag, log_str
