# Copyright (c) mmlesion contributors. All rights reserved.
"""Anchor settings as a config that inherits a model's and replaces its
anchor generator."""
from typing import List, Sequence

from .anchor_config import AnchorConfig


def _fmt(values: Sequence[float], digits: int = 3) -> str:
    return '[' + ', '.join(f'{v:.{digits}f}' for v in values) + ']'


def _ratio_expr(r: float, decimals: int) -> str:
    """``r`` itself, or ``1 / v`` when ``r`` is exactly the reciprocal of
    ``v`` rounded to ``decimals`` (how :func:`ratios_from_pairs` made it)."""
    if r < 1.0:
        inv = round(1.0 / r, decimals)
        if 1.0 / inv == r:
            return f'1 / {inv!r}'
    return repr(float(r))


def _generator_lines(anchors: AnchorConfig, decimals: int,
                     indent: str) -> List[str]:
    """``type=... octave_base_scale=None)`` lines of an anchor generator."""
    cfg = anchors.to_generator_cfg()
    return [
        f"{indent}type='AnchorGenerator',",
        f"{indent}strides={cfg['strides']!r},",
        f"{indent}base_sizes={cfg['base_sizes']!r},",
        f'{indent}ratios=[' +
        ', '.join(_ratio_expr(r, decimals) for r in anchors.ratios) + '],',
        f'{indent}scales=[' + ', '.join(repr(float(s))
                                        for s in anchors.scales) + '],',
        f'{indent}octave_base_scale=None,',
        f'{indent}scales_per_octave=None)',
    ]


def format_anchor_config(anchors: AnchorConfig,
                         base: str,
                         head: str = 'bbox_head',
                         header: Sequence[str] = (),
                         decimals: int = 4) -> str:
    """A config inheriting ``base`` whose anchor generator is ``anchors``.

    Only ``model.{head}.anchor_generator`` is replaced (every other setting
    comes from ``base``), with ``octave_base_scale`` and
    ``scales_per_octave`` None (mmdet refuses them next to ``scales``).

    Args:
        anchors (AnchorConfig): the anchors (strides of the target).
        base (str): ``_base_`` of the written config (a path relative to
            the written file, or ``mmdet::...``).
        head (str): ``'bbox_head'`` or ``'rpn_head'``.
        header (Sequence[str]): comment lines written on top (provenance).
        decimals (int): decimals the values were rounded to.

    Returns:
        str: the config file content.
    """
    lines = [f'# {h}' if h else '#' for h in header]
    lines += [
        f'_base_ = {base!r}', '', 'model = dict(', f'    {head}=dict(',
        '        anchor_generator=dict('
    ]
    gen = _generator_lines(anchors, decimals, ' ' * 12)
    gen[-1] += '))'
    return '\n'.join(lines + gen + [''])
