# Copyright (c) mmlesion contributors. All rights reserved.
"""What a study is made of: rows, the settings shared by every row, the
metric the rows are compared on, and the context a row runs in."""
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from mmengine.config import Config

_KEY = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._+-]*$')


@dataclass
class StudyRow:
    """One row of a study table: a config plus overrides.

    Args:
        key (str): unique id of the row, also its sub-folder of the work dir
            (letters, digits, ``._+-``).
        label (str): the row's name in the tables and the picture.
        config (str): config path relative to ``configs/`` (or an existing
            file).
        overrides (dict): options merged into the config before the settings
            shared by every row (:meth:`mmengine.Config.merge_from_dict`
            keys, e.g. ``{'model.neck.attention_gates': 'skips'}``).
        prepare (callable, optional): pre-step ``prepare(cfg, ctx)`` run
            after the settings and before training (anchor optimisation, a
            searched genotype, ...); it modifies ``cfg`` in place or returns
            a new config.
        run (callable, optional): ``run(cfg, ctx) -> dict`` replacing the
            default train-then-test (a multi-stage pipeline); it returns the
            row's numeric test metrics and trains only if ``ctx.train``.
        fingerprint (dict): further inputs that decide the row's result
            (e.g. the genotype file): a stored result is reused only when
            they are unchanged.
        tests_from (str, optional): key of an earlier row of the table whose
            last checkpoint (same seed) this row tests without training: a
            test-time-only mechanism (e.g. a score calibration) compared on
            the very same weights, so the comparison is paired.
    """
    key: str
    label: str
    config: str
    overrides: Dict[str, Any] = field(default_factory=dict)
    prepare: Optional[Callable[[Config, 'RowContext'],
                               Optional[Config]]] = None
    run: Optional[Callable[[Config, 'RowContext'], Dict[str, float]]] = None
    fingerprint: Dict[str, Any] = field(default_factory=dict)
    tests_from: Optional[str] = None

    def __post_init__(self) -> None:
        if not _KEY.match(self.key):
            raise ValueError(f'StudyRow {self.label!r}: key {self.key!r} must '
                             'be letters, digits and ._+- (a folder name)')
        if self.tests_from == self.key:
            raise ValueError(f'StudyRow {self.key!r}: tests_from names the '
                             'row itself')


@dataclass
class StudySettings:
    """Settings shared by every row of one study run.

    Args:
        work_dir (str): study folder; row ``k``, seed ``s`` runs in
            ``{work_dir}/{k}/seed_{s}`` and its result is
            ``{work_dir}/{k}/seed_{s}/result.json``.
        seeds (Sequence[int]): seeds every row is run with.
        data_root (str, optional): data root of every loader.
        max_epochs (int, optional): schedule length of every row alike.
        cfg_options (dict, optional): options merged into every row last.
        skip_train (bool): test each row's last checkpoint only.
        keep_going (bool): a failing row/seed is reported as not run and the
            study goes on (default: the error stops the study).
        overwrite (bool): re-run a row/seed whose stored result was made
            with other settings (default: that is an error).
    """
    work_dir: str
    seeds: Sequence[int] = (0, )
    data_root: Optional[str] = None
    max_epochs: Optional[int] = None
    cfg_options: Optional[Dict[str, Any]] = None
    skip_train: bool = False
    keep_going: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        self.seeds = tuple(int(s) for s in self.seeds)
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f'StudySettings: seeds must be distinct and at '
                             f'least one, got {list(self.seeds)}')


@dataclass(frozen=True)
class StudyMetric:
    """What the rows are compared on: a sensitivity curve at FP rates plus
    summary columns, all read from the test metrics of a row.

    Args:
        name (str): the protocol, for titles.
        fp_rates (Sequence[str]): the FP rates as written in the metric keys
            (``'0.5'``, ``'1'``, ...).
        sens_key (str): key of the sensitivity at a rate, with ``{rate}``.
        columns (Sequence[tuple]): ``(header, key)`` summary columns after
            the sensitivities (mean sensitivity, mAP, CPM, ...).
        fp_unit (str): what one FP-denominator unit is (image, scan, ...).
        evaluator (dict, optional): ``test_evaluator`` set on every row (a
            study on another protocol, e.g. ``dict(type='LUNA16Metric')``);
            None keeps each config's own.
        scale (float): display factor (100: percent).
    """
    name: str
    fp_rates: Tuple[str, ...]
    sens_key: str = 'froc/sens@{rate}'
    columns: Tuple[Tuple[str, str], ...] = ()
    fp_unit: str = 'image'
    evaluator: Optional[Dict[str, Any]] = None
    scale: float = 100.0

    def all_columns(self) -> Tuple[Tuple[str, str], ...]:
        """``(header, key)`` of every column: sensitivities, then the rest."""
        return tuple((f'{r} FP', self.sens_key.format(rate=r))
                     for r in self.fp_rates) + tuple(self.columns)


def deeplesion_froc(
    fp_rates: Sequence[str] = ('0.5', '1', '2', '4', '8', '16'),
    extra: Sequence[Tuple[str, str]] = (('mean0.5-4', 'froc/mean@0.5-4'),
                                        ('mAP', 'froc/bbox_mAP'))
) -> StudyMetric:
    """The DeepLesion 2D FROC (``FROCMetric``, IoU >= 0.5, per image)."""
    return StudyMetric(
        name='DeepLesion FROC, IoU >= 0.5',
        fp_rates=tuple(fp_rates),
        columns=tuple(extra))


def luna16_cpm() -> StudyMetric:
    """The LUNA16 FROC and CPM (``LUNA16Metric``, per scan)."""
    return StudyMetric(
        name='LUNA16 FROC',
        fp_rates=('0.125', '0.25', '0.5', '1', '2', '4', '8'),
        sens_key='luna16/sens@{rate}',
        columns=(('CPM', 'luna16/cpm'), ),
        fp_unit='scan',
        evaluator=dict(type='LUNA16Metric'))


@dataclass
class RowContext:
    """Where and how one row/seed runs (passed to ``prepare`` and ``run``).

    Attributes:
        row (StudyRow): the row.
        seed (int): the seed.
        row_dir (str): its work dir.
        settings (StudySettings): the study's settings.
        train (bool): whether to train (False: test ``cfg.load_from``).
    """
    row: StudyRow
    seed: int
    row_dir: str
    settings: StudySettings
    train: bool = True
