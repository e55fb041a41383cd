# Copyright (c) mmlesion contributors. All rights reserved.
"""An anchor set (sizes, ratios, scales), its presets and its fit to boxes."""
from dataclasses import dataclass
from typing import (Dict, List, Optional, Sequence, Tuple, TypedDict,
                    Union)

import numpy as np

from .anchor_iou import (OBJECTIVES, ArrayLike, anchor_shapes, best_anchor_iou,
                         objective_from_iou)


#: Anchor sizes of RetinaNet (Lin et al.) and of the paper (Sec. 2.1).
RETINANET_SIZES: Tuple[int, ...] = (32, 64, 128, 256, 512)

#: Pyramid presets: strides of the levels the heads run on and the anchor
#: sizes. 'P2-P6' is the improved model (Sec. 2.2 shifts the heads to
#: P2-P6); the paper states that the anchor sizes remain 32..512.
PYRAMIDS: Dict[str, Dict[str, Tuple[int, ...]]] = {
    'P3-P7': dict(strides=(8, 16, 32, 64, 128), sizes=RETINANET_SIZES),
    'P2-P6': dict(strides=(4, 8, 16, 32, 64), sizes=RETINANET_SIZES),
}

#: mmdet's RetinaNet default: ratios 1:2, 1:1, 2:1, scales 2^(i/3).
RETINANET_RATIOS: Tuple[float, ...] = (0.5, 1.0, 2.0)
RETINANET_SCALES: Tuple[float, ...] = (1.0, 2**(1 / 3), 2**(2 / 3))

#: The optimum reported in the paper (Sec. 2.1; sizes 32..512).
PAPER_RATIOS: Tuple[float, ...] = (1 / 3.27, 1 / 1.78, 1.0, 1.78, 3.27)
PAPER_SCALES: Tuple[float, ...] = (0.425, 0.540, 0.680)


class AnchorGeneratorCfg(TypedDict):
    """mmdet's ``anchor_generator`` config of an :class:`AnchorConfig`
    (``octave_base_scale`` and ``scales_per_octave`` None: see
    :meth:`AnchorConfig.to_generator_cfg`)."""
    type: str
    strides: List[int]
    base_sizes: List[Union[int, float]]
    ratios: List[float]
    scales: List[float]
    octave_base_scale: None
    scales_per_octave: None


@dataclass(frozen=True)
class AnchorConfig:
    """A set of anchors as mmdet's :class:`AnchorGenerator` builds them.

    Attributes:
        strides (tuple[int]): stride of each pyramid level.
        sizes (tuple[float]): anchor size (mmdet ``base_sizes``) per level.
        ratios (tuple[float]): height / width ratios.
        scales (tuple[float]): multipliers of the sizes.
    """
    strides: Tuple[int, ...]
    sizes: Tuple[float, ...]
    ratios: Tuple[float, ...]
    scales: Tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.strides) != len(self.sizes):
            raise ValueError(f'{len(self.strides)} strides but '
                             f'{len(self.sizes)} sizes')
        for name in ('sizes', 'ratios', 'scales'):
            values = getattr(self, name)
            if not values or min(values) <= 0:
                raise ValueError(f'{name} must be non-empty and positive, '
                                 f'got {values}')

    def shapes(self) -> np.ndarray:
        """``(A, 2)`` widths and heights (see :func:`anchor_shapes`)."""
        return anchor_shapes(self.sizes, self.ratios, self.scales)

    def to_generator_cfg(self) -> AnchorGeneratorCfg:
        """The ``anchor_generator`` config that reproduces these anchors.

        ``octave_base_scale`` and ``scales_per_octave`` are set to None so
        that the dict can be merged into a config inheriting mmdet's
        RetinaNet (which sets them; mmdet refuses both them and ``scales``).
        """
        return AnchorGeneratorCfg(
            type='AnchorGenerator',
            strides=[int(s) for s in self.strides],
            base_sizes=[_num(s) for s in self.sizes],
            ratios=[float(r) for r in self.ratios],
            scales=[float(s) for s in self.scales],
            octave_base_scale=None,
            scales_per_octave=None)

    @classmethod
    def from_generator_cfg(cls, cfg: dict) -> 'AnchorConfig':
        """Read an mmdet ``AnchorGenerator`` config dict.

        Handles explicit ``scales`` and ``octave_base_scale`` /
        ``scales_per_octave`` (sizes ``base_sizes * octave_base_scale``,
        scales ``2**(i / scales_per_octave)``); ``base_sizes`` default to
        the strides as in mmdet.

        Args:
            cfg (dict): e.g. ``model.bbox_head.anchor_generator``.

        Returns:
            AnchorConfig
        """
        gen_type = cfg.get('type', 'AnchorGenerator')
        if gen_type not in ('AnchorGenerator', 'mmdet.AnchorGenerator'):
            raise ValueError(f'Only AnchorGenerator configs are supported, '
                             f'got type={gen_type!r}')
        strides = []
        for s in cfg['strides']:
            if isinstance(s, (tuple, list)):
                if s[0] != s[1]:
                    raise ValueError(f'Non-square stride {s} not supported')
                s = s[0]
            strides.append(int(s))
        base_sizes = cfg.get('base_sizes') or strides
        octave = cfg.get('octave_base_scale')
        per_octave = cfg.get('scales_per_octave')
        if cfg.get('scales') is not None:
            sizes = [float(b) for b in base_sizes]
            scales = [float(s) for s in cfg['scales']]
        elif octave is not None and per_octave is not None:
            sizes = [float(b) * octave for b in base_sizes]
            scales = [2**(i / per_octave) for i in range(per_octave)]
        else:
            raise ValueError(f'AnchorGenerator config {cfg} has neither '
                             'scales nor octave_base_scale/scales_per_octave')
        return cls(
            strides=tuple(strides),
            sizes=tuple(sizes),
            ratios=tuple(float(r) for r in cfg['ratios']),
            scales=tuple(scales))

    @classmethod
    def retinanet_default(cls,
                          pyramid: str = 'P3-P7',
                          strides: Optional[Sequence[int]] = None,
                          sizes: Optional[Sequence[float]] = None
                          ) -> 'AnchorConfig':
        """mmdet's RetinaNet anchors (ratios 0.5/1/2, scales 2^(i/3)).

        Args:
            pyramid (str): a key of :data:`PYRAMIDS`.
            strides, sizes: override the preset.
        """
        preset = PYRAMIDS[pyramid]
        return cls(
            strides=tuple(strides or preset['strides']),
            sizes=tuple(float(s) for s in (sizes or preset['sizes'])),
            ratios=RETINANET_RATIOS,
            scales=RETINANET_SCALES)


def _num(x: float) -> Union[int, float]:
    """Write integral floats as ints in configs."""
    return int(x) if float(x).is_integer() else float(x)


@dataclass(frozen=True)
class AnchorFitStats:
    """How well a set of anchors covers a set of boxes.

    Attributes:
        num_boxes (int): number of boxes.
        mean_iou (float): mean best-anchor IoU.
        num_below (int): boxes whose best-anchor IoU < ``iou_thr``.
        iou_thr (float): the threshold (0.5: RetinaNet's positive IoU).
        objectives (dict): the value of every objective of
            :data:`OBJECTIVES`.
    """
    num_boxes: int
    mean_iou: float
    num_below: int
    iou_thr: float
    objectives: Dict[str, float]

    @property
    def frac_below(self) -> float:
        """Fraction of boxes whose best anchor IoU is below the threshold."""
        return self.num_below / max(self.num_boxes, 1)

    def summary(self) -> str:
        """One line: mean IoU and the number (%) of badly matched boxes."""
        return (f'mean best-anchor IoU {self.mean_iou:.4f}, boxes with best '
                f'IoU < {self.iou_thr:g}: {self.num_below} / '
                f'{self.num_boxes} ({100 * self.frac_below:.2f} %)')


def evaluate_anchors(box_wh: ArrayLike,
                     anchors: Union[AnchorConfig, np.ndarray],
                     iou_thr: float = 0.5) -> AnchorFitStats:
    """Best-anchor statistics of ``anchors`` on boxes of sizes ``box_wh``.

    Args:
        box_wh (ArrayLike): ``(N, 2)`` box widths and heights.
        anchors (AnchorConfig | np.ndarray): anchors, or ``(A, 2)`` shapes.
        iou_thr (float): threshold counted in ``num_below``.

    Returns:
        AnchorFitStats
    """
    box_wh = np.asarray(box_wh, dtype=np.float64).reshape(-1, 2)
    shapes = anchors.shapes() if isinstance(anchors, AnchorConfig) else anchors
    best = best_anchor_iou(box_wh, shapes)
    return AnchorFitStats(
        num_boxes=int(box_wh.shape[0]),
        mean_iou=float(best.mean()) if best.size else float('nan'),
        num_below=int((best < iou_thr).sum()),
        iou_thr=float(iou_thr),
        objectives={o: float(objective_from_iou(best, o))
                    for o in OBJECTIVES})
