# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS Table I as a study on the shared runner (:mod:`projects.study_demo.study`):
every row of the paper's Table I that mmlesion implements, each for several
training seeds, on the two synthetic demo sets of
:mod:`projects.lens.lens_demo`, scored on the LENS 3D protocol (docs/protocols.md
§2: 3D IoBB >= 0.3, sensitivity at 1/8..8 FPs per sub-volume and their
average) against the complete truth of the generator.

Rows (keys): ``baseline`` (MULAN detector, anchor RPN, dataset 0),
``a`` (AFP, dataset 0), ``b`` (LENS on both sets, expert 0 only), ``c``
(the same model, both experts fused), ``d`` (mining with the (c) model,
delta calibrated on its embedding, retrained), ``e`` (3D FPR on (d)); and
an ablation of (d), not in Table I: ``d_no_uncertain`` (the same mining
without the cross-dataset strategy, i.e. no ignored boxes), compared in
:data:`ABLATION_STEPS` when it has run.

The data are generated once per study folder (data seed
``LENSDemoSettings.seed``); the study seeds vary the training only, so every
row sees the same data and evaluation set and a step's effect can be taken
per seed (paired): :func:`step_effects`.

Rows depend on earlier rows of the same seed (``c`` and ``d`` use ``b``'s
model, ``e`` uses ``d``'s); a row whose source has not run raises a clear
error. Each row/seed writes ``result.json`` (the runner's, reused on a later
call), row ``d`` also ``mining.json``.
"""
import json
import math
import os
import os.path as osp
import shutil
from collections import OrderedDict
from dataclasses import asdict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.config import Config

from mmlesion.utils.writing.atomic import atomic_write_json, atomic_write_text
from projects.lens.lens_demo import (_DEMO_CONFIGS, ROWS, LENSDemoSettings,
                        _evaluate_model, _train, demo_row_config,
                        evaluation_setup, fit_demo_config,
                        generate_demo_sets, mine_demo,
                        train_fpr_and_rescore, with_mined_file)
from projects.study_demo.study import (RowContext, StudyMetric, StudyResult, StudyRow,
                    StudySettings, row_seed_dir, run_study)

#: The LENS 3D FROC (``evaluate_3d`` keys) as a study metric.
LENS_3D_METRIC = StudyMetric(
    name='LENS 3D FROC (3D IoBB >= 0.3, complete truth)',
    fp_rates=('0.125', '0.25', '0.5', '1', '2', '4', '8'),
    sens_key='sens@{rate}',
    columns=(('average', 'average'), ),
    fp_unit='sub-volume')

#: row key -> (label, demo model of :data:`lens_demo._DEMO_CONFIGS`).
STUDY_ROWS: 'OrderedDict[str, Tuple[str, str]]' = OrderedDict(
    baseline=(ROWS[0], 'baseline'),
    a=(ROWS[1], 'row_a'),
    b=(ROWS[2], 'row_bc'),
    c=(ROWS[3], 'row_bc'),
    d=(ROWS[4], 'row_d'),
    e=(ROWS[5], 'fpr'),
    # an ablation of (d), not a Table I row: the same mining without the
    # cross-dataset strategy (no uncertain, ignored boxes)
    d_no_uncertain=('(d) without uncertain (ignored) boxes', 'row_d'))
#: the row whose trained model (same seed) a row starts from.
SOURCE_ROW = dict(c='b', d='b', e='d', d_no_uncertain='b')
#: each mining row's strategies (:func:`~mmlesion.methods.lens.mining.mine_series`)
MINING_STRATEGIES = dict(
    d=('propagation', 'intra_patient', 'cross_dataset'),
    d_no_uncertain=('propagation', 'intra_patient'))
#: rows trained with mined labels, and the settings only they depend on
MINED_ROWS = ('d', 'e', 'd_no_uncertain')
MINING_ONLY_SETTINGS = ('match_score_thr', )
#: Table I's steps: (row before, row after, what the step adds).
STEPS: Tuple[Tuple[str, str, str], ...] = (
    ('baseline', 'a', 'AFP instead of the anchor RPN'),
    ('a', 'b', 'multi-dataset training (expert 0 only)'),
    ('b', 'c', 'proposal fusion of both experts'),
    ('c', 'd', 'missing-annotation mining, retrained'),
    ('d', 'e', '3D FPR, Eq. 2'),
)
#: comparisons with the ablation rows, reported when those rows ran.
ABLATION_STEPS: Tuple[Tuple[str, str, str], ...] = (
    ('c', 'd_no_uncertain', 'mining without uncertain boxes, retrained'),
    ('d', 'd_no_uncertain', 'dropping the uncertain (ignored) boxes'),
)
#: numeric mining results stored in row (d)'s metrics.
MINING_PREFIX = 'mining/'
DATA_MARKER = 'lens_study_data.json'
#: settings that decide the generated data.
_DATA_FIELDS = ('num_train', 'num_eval', 'unannotated_prob', 'followup_prob',
                'followup_missing_prob', 'seed')
#: data settings added later, with the value every earlier study had: they
#: enter the data marker and the rows' fingerprints only when they differ,
#: so earlier work dirs keep their data and stored results.
LATER_DATA_SETTINGS = dict(multi_study_prob=.35, num_studies=2)


def _data_settings(s: LENSDemoSettings) -> dict:
    """The settings that decide the generated data (``_DATA_FIELDS``, and
    each of ``LATER_DATA_SETTINGS`` that differs from its earlier value)."""
    out = {k: getattr(s, k) for k in _DATA_FIELDS}
    out.update({k: getattr(s, k) for k, v in LATER_DATA_SETTINGS.items()
                if getattr(s, k) != v})
    return out


def ensure_lens_study_data(data_dir: str, s: LENSDemoSettings,
                           eval_split: str = 'val',
                           log: Callable[[str], None] = print) -> dict:
    """Generate the two demo sets into ``data_dir`` once (into a temporary
    folder, then renamed); reuse them when ``DATA_MARKER`` records the same
    settings.

    Returns:
        dict: as :func:`~projects.lens.lens_demo.generate_demo_sets`.

    Raises:
        ValueError: ``data_dir`` holds data made with other settings, or is
            not a study data folder.
    """
    want = dict(_data_settings(s), eval_split=eval_split)
    marker = osp.join(data_dir, DATA_MARKER)
    if osp.isfile(marker):
        with open(marker) as f:
            have = json.load(f)
        if have.get('settings') != want:
            raise ValueError(
                f'{data_dir} holds LENS study data made with other settings '
                f'({have.get("settings")} != {want}); use another work dir')
        return dict(have['data'], roots=_roots(have['data']))
    if osp.exists(data_dir):
        raise ValueError(f'{data_dir} exists and is not LENS study data (no '
                         f'{DATA_MARKER}); use another work dir')
    tmp = data_dir.rstrip('/') + '.partial'
    if osp.exists(tmp):
        shutil.rmtree(tmp)  # an interrupted generation of this function
    gen = generate_demo_sets(tmp, s, eval_split, log)
    os.replace(tmp, data_dir)
    data = dict(partial=osp.join(data_dir, 'demo_partial') + '/',
                lung=osp.join(data_dir, 'demo_lung') + '/',
                summary=gen['summary'])
    atomic_write_json(marker, dict(settings=want, data=data), indent=1)
    return dict(data, roots=_roots(data))


def _roots(data: dict) -> Dict[str, str]:
    from projects.lens.lens_demo import _DEMO_ROOTS
    return {k: (data['partial'] if v == 'partial' else data['lung'])
            for k, v in _DEMO_ROOTS.items()}


def _last_checkpoint(row_dir: str, what: str) -> str:
    """The checkpoint mmengine recorded last in ``row_dir``."""
    path = osp.join(row_dir, 'last_checkpoint')
    if osp.isfile(path):
        with open(path) as f:
            ckpt = f.read().strip()
        if osp.isfile(ckpt):
            return ckpt
    raise FileNotFoundError(
        f'{what}: no trained model in {row_dir} (no last_checkpoint); run '
        'that row with this seed first')


def _load_model(cfg: Config, checkpoint: str):
    """The config's model with ``checkpoint`` loaded, in eval mode."""
    from mmlesion.apis import init_lesion_detector
    return init_lesion_detector(cfg, checkpoint).model


def mining_metrics(mining: dict) -> Dict[str, float]:
    """The numbers of :func:`~projects.lens.lens_demo.mine_demo` kept in
    row (d)'s result (``mining/...``): delta, boxes of each strategy, and
    precision / recall of the mined (ground truth) and uncertain (ignored)
    boxes against the lesions the generator left out of ``DL_info.csv``."""
    c, ev = mining['counts'], mining['demo_evaluation']
    fm = ev.get('followup_missing', {})
    out = dict(
        delta=mining['delta']['delta'],
        propagation_boxes=c['propagation'],
        intra_patient_boxes=c['intra_patient'],
        mined_boxes=ev['mined']['boxes'],
        mined_precision=ev['mined']['precision'],
        mined_recall_unannotated=ev['mined']['recall_unannotated'],
        uncertain_boxes=ev['uncertain']['boxes'],
        uncertain_precision=ev['uncertain']['precision'],
        uncertain_recall_unannotated=ev['uncertain']['recall_unannotated'],
        any_recall_unannotated=ev['any_recall_unannotated'],
        unannotated_lesions=ev['unannotated_lesions'],
        followup_missing_lesions=fm.get('lesions'),
        followup_missing_mined_recall=fm.get('mined_recall'))
    return {
        MINING_PREFIX + k: float(v)
        for k, v in out.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


class LENSStudy:
    """The rows of Table I on the study runner, sharing one data set.

    Args:
        work_dir (str): study folder (``data/``, ``<row>/seed_<s>/``,
            ``lens_study.{json,md}``, ``lens_study_froc.png``).
        settings (LENSDemoSettings): sizes (``seed`` is the data seed).
        eval_split (str): dataset 0's split that is scored.
        log (callable): progress lines.
    """

    def __init__(self, work_dir: str, settings: LENSDemoSettings,
                 eval_split: str = 'val',
                 log: Callable[[str], None] = print) -> None:
        self.work_dir = work_dir
        self.s = settings
        self.eval_split = eval_split
        self.log = log
        self._data: Optional[dict] = None
        self._eval: Optional[tuple] = None

    # -- shared data -----------------------------------------------------
    @property
    def data(self) -> dict:
        if self._data is None:
            self._data = ensure_lens_study_data(
                osp.join(self.work_dir, 'data'), self.s, self.eval_split,
                self.log)
        return self._data

    @property
    def evaluation(self) -> tuple:
        """(dataset, truth, slices) of the scored split, built once."""
        if self._eval is None:
            cfg = demo_row_config('row_bc', self.work_dir, self.data['roots'],
                                  1)
            self._eval = evaluation_setup(cfg, self.data['partial'],
                                          self.eval_split,
                                          self.s.eval_max_offset)
        return self._eval

    def test_set(self):
        """The lesions (complete truth, unannotated included) and slices
        the rows are scored on, for the study report."""
        from projects.study_demo.study import MIN_TEST_LESIONS, StudyTestSet
        _, gts, series_slices = self.evaluation
        return StudyTestSet(
            lesions=sum(len(g) for g in gts.values()),
            images=sum(map(len, series_slices.values())),
            image_unit='evaluated slices',
            data_seeds=(self.s.seed, ),
            minimum=MIN_TEST_LESIONS)

    def _fit(self, cfg: Config, key: str, row_dir: str,
             seed: int) -> Config:
        return fit_demo_config(cfg, STUDY_ROWS[key][1], row_dir,
                               self.data['roots'], self.s.epochs, seed)

    def _evaluate(self, model) -> tuple:
        eval_ds, gts, _ = self.evaluation
        return _evaluate_model(model, eval_ds, gts, self.s.eval_max_offset)

    def _model(self, cfg: Config, ctx: RowContext):
        """Train ``cfg`` (``ctx.train``) or load its last checkpoint."""
        if ctx.train:
            return _train(cfg, self.s.max_train_iters)
        return _load_model(cfg, _last_checkpoint(ctx.row_dir, ctx.row.key))

    def _source(self, key: str, ctx: RowContext) -> str:
        src = StudyRow(SOURCE_ROW[key], '', '')
        return _last_checkpoint(
            row_seed_dir(ctx.settings, src, ctx.seed),
            f'row {key!r} needs row {SOURCE_ROW[key]!r} (seed {ctx.seed})')

    # -- rows ------------------------------------------------------------
    def run_row(self, cfg: Config, ctx: RowContext) -> Dict[str, float]:
        """The runner's ``run`` for every row: train / derive, then score."""
        key = ctx.row.key
        cfg = self._fit(cfg, key, ctx.row_dir, ctx.seed)
        if key in ('baseline', 'a', 'b'):
            model = self._model(cfg, ctx)
            if key == 'b':
                model.test_cfg.expert_fusion.experts = [0]
            return self._evaluate(model)[0]
        if key == 'c':
            model = _load_model(cfg, self._source('c', ctx))
            model.test_cfg.expert_fusion.experts = None
            return self._evaluate(model)[0]
        if key in MINING_STRATEGIES:
            return self._row_d(cfg, ctx)
        if key == 'e':
            return self._row_e(ctx)
        raise KeyError(f'LENS study: no row {key!r}')

    def _row_d(self, cfg: Config, ctx: RowContext) -> Dict[str, float]:
        mined_path = osp.join(ctx.row_dir, 'lens_mined.json')
        mining_path = osp.join(ctx.row_dir, 'mining.json')
        if ctx.train:
            os.makedirs(ctx.row_dir, exist_ok=True)
            cfg_c = demo_row_config('row_bc', ctx.row_dir,
                                    self.data['roots'], self.s.epochs,
                                    ctx.seed)
            model_c = _load_model(cfg_c, self._source('d', ctx))
            model_c.test_cfg.expert_fusion.experts = None
            self.log(f'study: {ctx.row.key} seed {ctx.seed}: mining with the '
                     '(c) model')
            mining = mine_demo(model_c, cfg_c, self.data['partial'], self.s,
                               mined_path, MINING_STRATEGIES[ctx.row.key])
            atomic_write_json(mining_path, mining, indent=1, default=float)
        elif osp.isfile(mining_path):
            with open(mining_path) as f:
                mining = json.load(f)
        else:
            raise FileNotFoundError(f'{mining_path}: row d was not trained')
        self.log(f'study: {ctx.row.key} seed {ctx.seed}: '
                 f'{mining_metrics(mining)}')
        model = self._model(with_mined_file(cfg, mined_path), ctx)
        out = dict(self._evaluate(model)[0])
        out.update(mining_metrics(mining))
        return out

    def _row_e(self, ctx: RowContext) -> Dict[str, float]:
        d_dir = row_seed_dir(ctx.settings, StudyRow('d', '', ''), ctx.seed)
        cfg_d = with_mined_file(
            demo_row_config('row_d', d_dir, self.data['roots'],
                            self.s.epochs, ctx.seed),
            osp.join(d_dir, 'lens_mined.json'))
        model_d = _load_model(cfg_d, self._source('e', ctx))
        _, findings_d = self._evaluate(model_d)
        if not ctx.train:
            raise ValueError('row e: --skip-train is not supported (the FPR '
                             'network is retrained with its proposals)')
        _, gts, _ = self.evaluation
        res, fpr = train_fpr_and_rescore(
            model_d, cfg_d, findings_d, osp.join(d_dir, 'lens_mined.json'),
            self.data['partial'], self.data['roots'], ctx.row_dir, self.s,
            ctx.seed, gts, self.log)
        if res is None:
            raise RuntimeError(
                f'row e seed {ctx.seed}: (d) gave no TP or no FP proposal '
                f'on the training series ({fpr["counts"]}): no FPR to train')
        res = dict(res)
        res.update({f'fpr/{k}': float(v) for k, v in fpr['counts'].items()})
        return res

    def rows(self) -> List[StudyRow]:
        """The study table (Table I's rows in order, then the ablation)."""
        fingerprint = dict(asdict(self.s), eval_split=self.eval_split)
        # a setting added later enters only the rows it changes, so that
        # the rows before it keep their stored results
        later = {k: fingerprint.pop(k) for k in MINING_ONLY_SETTINGS}
        for k, v in LATER_DATA_SETTINGS.items():
            if fingerprint[k] == v:
                del fingerprint[k]
        return [
            StudyRow(key=key, label=label, config=_DEMO_CONFIGS[model],
                     run=self.run_row,
                     fingerprint=dict(fingerprint,
                                      starts_from=SOURCE_ROW.get(key),
                                      **(later if key in MINED_ROWS
                                         else {})))
            for key, (label, model) in STUDY_ROWS.items()
        ]

    def run(self, seeds: Sequence[int], selected: Optional[Sequence[str]]
            = None, keep_going: bool = False) -> StudyResult:
        """Run the selected rows (default all) for every seed, resumably;
        rows are run in Table I order, so a row's source row runs first."""
        settings = StudySettings(self.work_dir, seeds=tuple(seeds),
                                 keep_going=keep_going)
        return run_study(self.rows(), settings, LENS_3D_METRIC,
                         selected=selected, log=self.log)


def _per_seed(result: StudyResult, key: str, metric: str) -> Dict[int, float]:
    for r in result.rows:
        if r.row.key == key:
            return {s: m[metric] for s, m in r.metrics.items()
                    if metric in m}
    return {}


def step_effects(result: StudyResult, metric: str = 'average',
                 steps: Sequence[Tuple[str, str, str]] = STEPS,
                 k: float = 2.0) -> List[dict]:
    """Each step's effect on ``metric``, paired by seed, by the one rule of
    every study (:func:`projects.study_demo.study.paired_effects`): the mean of
    the per-seed differences (after - before; same data, same seed), their
    sample standard deviation (ddof 1), ``shown`` when ``|mean| > k * std``
    with at least 3 paired seeds (None with fewer).

    Returns:
        list[dict]: ``before``, ``after``, ``step``, ``seeds``, ``mean``,
        ``std``, ``diffs`` (per seed), ``smallest_shown``, ``shown``.
    """
    from projects.study_demo.study import StudyStep, paired_effects
    return paired_effects(result,
                          [StudyStep(b, a, what) for b, a, what in steps],
                          metric, factor=k)


def effects_markdown(effects: Sequence[dict], k: float = 2.0) -> str:
    """The step table: mean ± std of the paired differences (points of
    average sensitivity, %), per-seed differences, shown or not."""
    lines = [
        '| step | rows | seeds | mean difference (points) | std of the '
        f'per-seed differences | per seed | > {k:g} std |',
        '|---|---|---:|---:|---:|---|---|'
    ]
    for e in effects:
        verdict = ('-' if e['shown'] is None else
                   'shown' if e['shown'] else 'not shown')
        per = ', '.join(f'{100 * d:+.1f}' for d in e['diffs']) or '-'
        mean = '-' if math.isnan(e['mean']) else f'{100 * e["mean"]:+.2f}'
        std = '-' if math.isnan(e['std']) else f'{100 * e["std"]:.2f}'
        lines.append(f'| {e["step"]} | {e["before"]} -> {e["after"]} | '
                     f'{len(e["seeds"])} | {mean} | {std} | {per} | '
                     f'{verdict} |')
    return '\n'.join(lines) + '\n'


def mining_summary_markdown(result: StudyResult) -> str:
    """Row (d)'s mining numbers: mean ± std (ddof 1) over its seeds; a
    quantity undefined for some seeds (a precision of 0 boxes) is averaged
    over the others and says over how many."""
    rows = [r for r in result.rows if r.row.key == 'd' and r.done]
    if not rows:
        return ''
    per_seed = rows[0].metrics
    lines = [f'Mining with the (c) model, seeds {sorted(per_seed)} '
             '(mean ± std):', '', '| quantity | value |', '|---|---:|']
    keys = sorted({k for m in per_seed.values() for k in m
                   if k.startswith(MINING_PREFIX)})
    for key in keys:
        vals = [m[key] for m in per_seed.values()
                if key in m and math.isfinite(m[key])]
        if not vals:
            val = 'undefined'
        else:
            val = f'{np.mean(vals):.3g}'
            if len(vals) > 1:
                val += f' ± {np.std(vals, ddof=1):.2g}'
            if len(vals) < len(per_seed):
                val += f' ({len(vals)} of {len(per_seed)} seeds)'
        lines.append(f'| {key[len(MINING_PREFIX):]} | {val} |')
    return '\n'.join(lines) + '\n'


def write_effects(result: StudyResult, name: str = 'lens_study') -> str:
    """``{name}_effects.md``: the step table and the mining table."""
    path = osp.join(result.settings.work_dir, f'{name}_effects.md')
    ablations = [
        e for e in step_effects(result, steps=ABLATION_STEPS) if e['seeds']
    ]
    text = ('Each step\'s effect on the average sensitivity (1/8..8 FPs per '
            'sub-volume), paired by seed:\n\n' +
            effects_markdown(step_effects(result)) + '\n' +
            ('Ablations, paired by seed:\n\n' + effects_markdown(ablations) +
             '\n' if ablations else '') +
            mining_summary_markdown(result))
    atomic_write_text(path, text)
    return path
