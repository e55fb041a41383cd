# Copyright (c) mmlesion contributors. All rights reserved.
"""A config whose pretty text is formatted once per content.

mmengine's Runner asks for ``cfg.pretty_text`` for the log, the dumped
config and every checkpoint, and yapf formats the whole config each time
(seconds on a CPU). :func:`formatted_once` gives the Runner a config that
formats a given content once per process; the text is mmengine's own,
byte for byte.
"""
import threading
from collections import OrderedDict

from mmengine.config import Config

#: Formatted texts kept per process (keyed by the unformatted text).
CACHE_SIZE = 16

_CACHE: 'OrderedDict[str, str]' = OrderedDict()
_LOCK = threading.Lock()


class FormattedOnceConfig(Config):
    """A :class:`~mmengine.config.Config` whose :attr:`pretty_text` is
    formatted by yapf once per content (the unformatted text is the key,
    so a changed config is formatted again)."""

    @property
    def pretty_text(self) -> str:
        """The config as formatted Python text (mmengine's, reused)."""
        plain = Config.pretty_text.fget  # mmengine's property
        if not self._format_python_code:
            return plain(self)
        object.__setattr__(self, '_format_python_code', False)
        try:
            key = plain(self)
        finally:
            object.__setattr__(self, '_format_python_code', True)
        with _LOCK:
            text = _CACHE.get(key)
            if text is not None:
                _CACHE.move_to_end(key)
                return text
        text = plain(self)
        with _LOCK:
            _CACHE[key] = text
            while len(_CACHE) > CACHE_SIZE:
                _CACHE.popitem(last=False)
        return text


def formatted_once(cfg: Config) -> Config:
    """``cfg`` as a :class:`FormattedOnceConfig` (same content, shared).

    Args:
        cfg (Config): a loaded config.

    Returns:
        Config: a config to give to ``Runner.from_cfg``; ``cfg`` itself when
        it already is one.
    """
    if isinstance(cfg, FormattedOnceConfig):
        return cfg
    out = FormattedOnceConfig.__new__(FormattedOnceConfig)
    out.__setstate__(cfg.__getstate__())
    return out
