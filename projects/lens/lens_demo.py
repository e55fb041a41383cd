# Copyright (c) mmlesion contributors. All rights reserved.
"""The five steps of LENS (Yan et al., TMI 2020, Sec. III) on synthetic
data, end to end on CPU, scored on the 3D protocol (docs/protocols.md §2).

Data: two synthetic sets in the DeepLesion release layout written by
:func:`~projects.study_demo.synthetic.deeplesion.generate_study_deeplesion`:

* ``demo_partial`` (dataset 0): partially labelled, a key slice shows with
  probability ``unannotated_prob`` one more lesion that has no CSV row, and
  a patient's second study is a follow-up (``followup_prob``) showing the
  first study's lesions again, each left without a CSV row with probability
  ``followup_missing_prob`` (the missing annotations intra-patient matching
  is for);
* ``demo_lung`` (dataset 1): another seed, lung nodules only
  (``lesion_types=(5, )``), every lesion annotated (``unannotated_prob=0``):
  a fully labelled single-type set, the role LUNA16 plays in the paper, for
  the multi-dataset rows and for cross-dataset mining (its expert's
  confident proposals on dataset 0 become uncertain lesions).

Rows (Table I of the paper, on the demo configs of ``configs/lens/``):

* ``baseline``: MULAN-style Faster R-CNN (anchor RPN), dataset 0 only;
* ``(a) AFP``: the RPN replaced by AFP, dataset 0 only;
* ``(b) + multi-dataset``: LENS trained on both sets, expert 0 only;
* ``(c) + proposal fusion``: the same model, both experts fused;
* ``(d) + mining``: proposals of (c) on dataset 0's training series, the
  three mining strategies, LENS retrained with the mined (ground truth) and
  uncertain (ignored) lesions;
* ``(e) + 3D FPR``: TP / FP 3D proposals of (d) on the training series,
  the FPR network trained on them, final score ``(s_LENS + s_FPR) / 2`` of
  (d)'s 3D findings.

Evaluation: every stored slice (or those within ``eval_max_offset`` of a key
slice) of every series of dataset 0's ``eval_split`` is predicted, the 2D
boxes stacked into 3D findings (:func:`predict_series_3d`), and the findings
scored with the LENS 3D FROC (3D IoBB >= 0.3, sensitivity at 1/8..8 FPs per
sub-volume, a series being a sub-volume) against the **complete** 3D truth:
the bounding boxes of the generator's ellipsoids (``demo_meta.json``),
unannotated ones included, clipped to the evaluated slices.
"""
import copy
import json
import math
import os
import os.path as osp
import shutil
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger, print_log

from mmlesion.methods.lens.mining.demo_eval import load_demo_lesions
from mmlesion.structures.finding_3d import Finding3D
from mmlesion.utils.writing.atomic import atomic_write
# The report writers live in .lens_demo_report; importable from here too.
from projects.lens.lens_demo_mining import (  # noqa: F401
    PAPER_DELTA, calibrate_demo_delta, lens_train_set, mine_demo,
    with_mined_file)
from projects.lens.lens_demo_report import (  # noqa: F401
    mining_markdown, results_markdown, write_results)
from projects.lens.series_froc_3d import (annotation_reference, evaluate_3d,
                                           findings_to_dets)


#: Marker file of a work dir written by :func:`run_lens_demo` (only such a
#: folder is replaced with ``overwrite=True``).
MARKER = '.lens_demo'

_DEMO_CONFIGS = dict(
    baseline='lens/demo/mulan_densenet-tiny_fpn_radam-12e_deeplesion-demo-partial.py',
    row_a='lens/demo/lens-afp_densenet-tiny_fpn_radam-12e_deeplesion-demo-partial.py',
    row_bc='lens/demo/lens-afp-multi-fusion_densenet-tiny_fpn_radam-12e_deeplesion-demo-2sets.py',
    row_d='lens/demo/lens-afp-multi-fusion-mining_densenet-tiny_fpn_radam-12e_deeplesion-demo-2sets.py',
    fpr='lens/demo/lens-fpr_resnet18-3d-tiny_radam-6e_deeplesion-demo-partial.py')
_DEMO_ROOTS = {
    'data/demo_deeplesion/': 'partial',
    'data/demo_lung/': 'lung'
}
ROWS = ('baseline', '(a) AFP', '(b) + multi-dataset',
        '(c) + proposal fusion', '(d) + mining', '(e) + 3D FPR')


@dataclass
class LENSDemoSettings:
    """Sizes of the demo run.

    Args:
        num_train (int): training key slices of each of the two sets.
        num_eval (int): key slices of the evaluated split of dataset 0
            (96: 200 lesions of complete truth with these defaults, 187
            with the study's mining settings, data seed 0; 64 gave 124
            there, under the 150 a study verdict needs).
        unannotated_prob (float): probability of an unannotated lesion on a
            key slice of dataset 0.
        followup_prob (float): probability that a patient's second study
            in dataset 0 is a follow-up of the first (same lesions).
        followup_missing_prob (float): probability that a lesion annotated
            in the first study has no CSV row in the follow-up.
        multi_study_prob (float): probability that a patient of dataset 0
            has more than one study (the generator's default 0.35).
        num_studies (int): studies of such a patient (default 2); each
            after the first is a follow-up with ``followup_prob``. More
            follow-ups with a high ``followup_missing_prob`` leave more
            lesions for intra-patient matching to find (the ``mining``
            data preset of the study, see ``configs/lens/README.md``).
        epochs (int): epochs of every detector (the demo configs' lr steps
            at 2/3 and 5/6 of them, as their 12-epoch schedule).
        fpr_epochs (int): epochs of the FPR network.
        mining_max_offset (int, optional): slices mined / used for FPR
            proposals: within this many slices of a key slice.
        eval_max_offset (int, optional): evaluated slices: within this
            many of a key slice (None: all stored slices; the default 2
            keeps the CPU run bounded, the truth is clipped to them).
        dist_thr (float, optional): delta of intra-patient matching; None
            (default): calibrated on the (c) model before mining
            (:func:`calibrate_demo_delta`: annotated lesions of dataset 0's
            training split, the largest delta with pair precision >=
            ``min_match_precision``); the paper's 0.15 belongs to LesaNet's
            embedding, not to this one.
        min_match_precision (float): pair precision the calibrated delta
            must reach (the paper found 90 % of its matches true).
        match_score_thr (float): minimum tracklet score of an
            intra-patient match (:func:`~mmlesion.methods.lens.mining.strategies.
            match_intra_patient`; the paper is silent, 0.5 = its sigma;
            the study before this option ran with 0).
        seed (int): data and training seed.
        max_train_iters (int, optional): stop every detector training
            after this many iterations (``--quick``).
    """
    num_train: int = 150
    num_eval: int = 96
    unannotated_prob: float = 0.3
    followup_prob: float = 1.
    followup_missing_prob: float = 0.5
    multi_study_prob: float = .35
    num_studies: int = 2
    epochs: int = 12
    fpr_epochs: int = 6
    mining_max_offset: Optional[int] = 2
    eval_max_offset: Optional[int] = 2
    dist_thr: Optional[float] = None
    min_match_precision: float = 0.9
    match_score_thr: float = 0.5
    seed: int = 0
    max_train_iters: Optional[int] = None

    @classmethod
    def quick(cls) -> 'LENSDemoSettings':
        """Tiny settings for the test: 4 training key slices, one
        iteration per model, key slices only (mining and evaluation)."""
        return cls(num_train=4, num_eval=1, epochs=1, fpr_epochs=1,
                   mining_max_offset=0, eval_max_offset=0,
                   max_train_iters=1)


def prepare_work_dir(work_dir: str, overwrite: bool = False) -> None:
    """Create the work dir; refuse to reuse a non-empty one unless
    ``overwrite`` and it was written by this demo (marker file).

    Raises:
        FileExistsError: the folder exists and may not be replaced.
    """
    if osp.isdir(work_dir) and os.listdir(work_dir):
        if not overwrite:
            raise FileExistsError(
                f'{work_dir} exists and is not empty: pass --overwrite to '
                'replace an earlier demo run')
        if not osp.isfile(osp.join(work_dir, MARKER)):
            raise FileExistsError(
                f'{work_dir} was not written by the LENS demo (no {MARKER} '
                'file): not replacing it even with --overwrite')
        shutil.rmtree(work_dir)
    elif osp.exists(work_dir) and not osp.isdir(work_dir):
        raise FileExistsError(f'{work_dir} exists and is not a folder')
    os.makedirs(work_dir, exist_ok=True)
    open(osp.join(work_dir, MARKER), 'w').close()


def demo_ground_truth_3d(meta_path: str,
                         series_slices: Dict[str, Sequence[int]]
                         ) -> Dict[str, np.ndarray]:
    """3D boxes of every lesion the demo generator drew, annotated or not.

    An ellipsoid (semi-axes ``a >= b`` in-plane at angle ``t``, ``c``
    axial) has the in-plane half extents ``sqrt(a^2 cos^2 t + b^2 sin^2 t)``
    and ``sqrt(a^2 sin^2 t + b^2 cos^2 t)`` (mm, / spacing for pixels) and
    covers slices ``k`` with ``|z_k - z_c| < c``. Boxes are continuous
    voxel boxes ``[x1, y1, z1, x2, y2, z2]`` with z in slice indices (slice
    ``k`` covers ``[k - 0.5, k + 0.5]``, as :func:`stack_slice_boxes`), the
    z range clipped to the evaluated slices; lesions outside them are
    dropped.

    Args:
        meta_path (str): the set's ``demo_meta.json``.
        series_slices (dict): series folder -> evaluated slice indices.

    Returns:
        dict: series folder -> ``(M, 6)`` float64 boxes.
    """
    truth = load_demo_lesions(meta_path)
    out = {}
    for name, slices in series_slices.items():
        if name not in truth:
            raise KeyError(f'{meta_path}: no lesion entry for series {name}')
        info = truth[name]
        zs = np.asarray(sorted(slices))
        boxes = []
        for les in info['lesions']:
            a, b, c = les['semi_axes_mm']
            t = float(les.get('angle', 0.))
            hx = math.sqrt((a * math.cos(t))**2 + (b * math.sin(t))**2)
            hy = math.sqrt((a * math.sin(t))**2 + (b * math.cos(t))**2)
            hx, hy = hx / info['spacing'], hy / info['spacing']
            zc = info['key_index'] + (les['center_mm'][2] -
                                      info['z_mm']) / info['interval']
            dz = c / info['interval']
            inside = zs[np.abs(zs - zc) < dz]
            if not len(inside):
                continue
            px, py = les['center_px']
            boxes.append([px - hx, py - hy, inside.min() - 0.5,
                          px + hx, py + hy, inside.max() + 0.5])
        out[name] = np.asarray(boxes, np.float64).reshape(-1, 6)
    return out


def _replace_roots(obj, roots: Dict[str, str]):
    if isinstance(obj, dict):
        return {k: _replace_roots(v, roots) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_replace_roots(v, roots) for v in obj)
    if isinstance(obj, str) and obj in roots:
        return roots[obj]
    return obj


def demo_row_config(name: str, work_dir: str, roots: Dict[str, str],
                    epochs: int, seed: int = 0) -> Config:
    """A demo config of ``configs/lens/`` sized for the demo run: data roots
    replaced, ``epochs`` epochs with the lr steps at 2/3 and 5/6 of them
    (the demo configs' 8/12 and 10/12), no validation, one checkpoint.

    Args:
        name (str): a key of the demo configs (``baseline``, ``row_a``,
            ``row_bc``, ``row_d``, ``fpr``).
        work_dir (str): where the run writes.
        roots (dict): the configs' data roots -> the generated sets.
        epochs (int): epochs.
        seed (int): mmengine's randomness seed.

    Returns:
        Config: ready for ``Runner.from_cfg``.
    """
    from mmlesion.utils import get_config
    return fit_demo_config(get_config(_DEMO_CONFIGS[name]), name, work_dir,
                           roots, epochs, seed)


def fit_demo_config(cfg: Config, name: str, work_dir: str,
                    roots: Dict[str, str], epochs: int,
                    seed: int = 0) -> Config:
    """:func:`demo_row_config` on an already loaded config (the study
    runner's): returns a new config with the data roots replaced, the
    schedule of ``epochs`` epochs, no validation / test loops."""
    cfg = Config(_replace_roots(cfg.to_dict(), roots))
    cfg.work_dir = work_dir
    cfg.experiment_name = f'lens_demo_{name}'
    cfg.randomness = dict(seed=seed)
    cfg.train_cfg.max_epochs = epochs
    if 'val_interval' in cfg.train_cfg:
        cfg.train_cfg.val_interval = epochs + 1
    milestones = sorted({max(1, round(epochs * 2 / 3)),
                         max(1, round(epochs * 5 / 6))})
    for sched in cfg.param_scheduler:
        sched.update(end=epochs)
        if 'milestones' in sched:
            sched.milestones = milestones
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=epochs, max_keep_ckpts=1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10)
    for key in ('val', 'test'):
        cfg[f'{key}_dataloader'] = None
        cfg[f'{key}_cfg'] = None
        cfg[f'{key}_evaluator'] = None
    return cfg


def _train(cfg: Config, max_iters: Optional[int]) -> torch.nn.Module:
    """Train with mmengine's Runner; ``max_iters`` cuts every epoch short
    (the test's tiny runs)."""
    from mmengine.runner import Runner

    from mmlesion.utils.configs.pretty_text import without_yapf
    if max_iters is not None:
        cfg.train_cfg = dict(
            type='IterBasedTrainLoop', max_iters=max_iters,
            val_interval=max_iters + 1)
        cfg.param_scheduler = None
        cfg.default_hooks.checkpoint = dict(
            type='CheckpointHook', interval=max_iters, by_epoch=False)
        cfg.log_processor = dict(by_epoch=False)
    os.makedirs(cfg.work_dir, exist_ok=True)
    cfg.dump(osp.join(cfg.work_dir, 'config.py'))
    runner = Runner.from_cfg(without_yapf(cfg))
    runner.train()
    model = runner.model
    model.eval()
    return model


def _eval_dataset(cfg: Config, root: str, split: str):
    from mmdet.registry import DATASETS
    from mmengine.registry import DefaultScope
    ds = dict(
        type='DeepLesionDataset',
        data_root=root,
        ann_file='DL_info.csv',
        data_prefix=dict(img='Images_png/'),
        split=split,
        drop_noisy=False,
        test_mode=True,
        pipeline=copy.deepcopy(cfg.test_pipeline))
    with DefaultScope.overwrite_default_scope('mmdet'):
        return DATASETS.build(ds)


def _evaluate_model(model, dataset, gts, max_offset) -> tuple:
    from mmlesion.apis.series_inference import predict_series_3d
    findings = predict_series_3d(model, dataset, max_offset=max_offset)
    dets = {n: findings_to_dets(f) for n, f in findings.items()}
    return evaluate_3d(dets, gts), findings


def _fpr_rescore(model, findings: Dict[str, List[Finding3D]], root: str,
                 fpr_cfg: Config, path: str) -> Dict[str, np.ndarray]:
    """Eq. 2 on 3D findings, ``(s_LENS + s_FPR) / 2``
    (:func:`~mmlesion.methods.lens.fpr_rescore.rescore_findings_with_fpr`),
    as per-series ``(N, 7)`` detections."""
    from mmlesion.methods.lens.fpr_rescore import (FPRPatchSource,
                                                   rescore_findings_with_fpr)
    rescored = rescore_findings_with_fpr(model, findings, fpr_cfg,
                                         FPRPatchSource(root, ann_path=path))
    return {n: findings_to_dets(f) for n, f in rescored.items()}


def generate_demo_sets(data_dir: str, s: LENSDemoSettings,
                       eval_split: str = 'val',
                       log: Callable[[str], None] = print) -> dict:
    """Write the two demo sets (``demo_partial``, ``demo_lung``) into
    ``data_dir`` with the sizes of ``s`` (data seed ``s.seed``).

    Returns:
        dict: ``partial`` and ``lung`` (data roots), ``roots`` (the demo
        configs' roots -> these), ``summary`` (of the partial set).
    """
    from projects.study_demo.synthetic.deeplesion import \
        generate_study_deeplesion
    partial = osp.join(data_dir, 'demo_partial') + '/'
    lung = osp.join(data_dir, 'demo_lung') + '/'
    n_val = s.num_eval if eval_split == 'val' else 0
    n_test = s.num_eval if eval_split == 'test' else 0
    log('generating the partially labelled set')
    summary = generate_study_deeplesion(
        partial, seed=s.seed, num_train=s.num_train, num_val=n_val,
        num_test=n_test, unannotated_prob=s.unannotated_prob,
        followup_prob=s.followup_prob,
        followup_missing_prob=s.followup_missing_prob,
        multi_study_prob=s.multi_study_prob, num_studies=s.num_studies,
        show_progress=True)
    log('generating the fully labelled single-type (lung nodule) set')
    generate_study_deeplesion(
        lung, seed=s.seed + 1, num_train=s.num_train, num_val=0,
        num_test=0, unannotated_prob=0., lesion_types=(5, ),
        show_progress=True)
    roots = {k: (partial if v == 'partial' else lung)
             for k, v in _DEMO_ROOTS.items()}
    return dict(partial=partial, lung=lung, roots=roots, summary=summary)


def evaluation_setup(cfg: Config, partial: str, eval_split: str,
                     max_offset: Optional[int]) -> tuple:
    """The evaluated split of dataset 0 and its complete 3D truth.

    Returns:
        tuple: (dataset, truth ``series -> (M, 6)`` boxes, ``series ->
        evaluated slice indices``).
    """
    from mmlesion.apis.series_inference import iter_series_slices
    eval_ds = _eval_dataset(cfg, partial, eval_split)
    series_slices: Dict[str, List[int]] = {}
    for info_dir, z, _, _, _ in _plan_only(iter_series_slices, eval_ds,
                                           max_offset):
        series_slices.setdefault(osp.basename(osp.normpath(info_dir)),
                                 []).append(z)
    gts = demo_ground_truth_3d(osp.join(partial, 'demo_meta.json'),
                               series_slices)
    return eval_ds, gts, series_slices


def fpr_training_config(fpr_dir: str, roots: Dict[str, str], epochs: int,
                        seed: int, partial: str, prop_path: str) -> Config:
    """The FPR network's config (step 5), trained on the proposals at
    ``prop_path``. ``prop_path`` is a path from the current folder (a
    study's row folder); the dataset reads a relative ``ann_file`` from its
    ``data_root`` (``partial``), so the path is written absolute."""
    fpr_cfg = demo_row_config('fpr', fpr_dir, roots, epochs, seed)
    fpr_cfg.train_dataloader.dataset.update(
        data_root=partial, ann_file=osp.abspath(prop_path))
    return fpr_cfg


def train_fpr_and_rescore(model_d, cfg_d: Config, findings_d: dict,
                          mined_path: str, partial: str,
                          roots: Dict[str, str], fpr_dir: str,
                          s: LENSDemoSettings, seed: int,
                          gts: Dict[str, np.ndarray],
                          log: Callable[[str], None] = print) -> tuple:
    """Step 5: TP / FP 3D proposals of (d) on dataset 0's training series,
    the FPR network trained on them, Eq. 2 on (d)'s findings, scored.

    Returns:
        tuple: (row (e)'s 3D FROC, or None when there is no TP or no FP
        proposal to train on; ``dict(counts, trained)``).
    """
    from mmlesion.methods.lens.fpr_proposals import (FPRProposalSettings,
                                                     make_fpr_proposals)
    made = make_fpr_proposals(
        model_d, lens_train_set(cfg_d, 0), mined_path,
        FPRProposalSettings(max_offset=s.mining_max_offset))
    fpr_counts = made.counts.to_dict()
    os.makedirs(fpr_dir, exist_ok=True)
    prop_path = osp.join(fpr_dir, 'lens_fpr_proposals.json')
    with atomic_write(prop_path) as f:
        json.dump(made.to_dict(), f)
    log(f'FPR proposals: {fpr_counts}')
    fpr = dict(counts=fpr_counts, trained=False)
    if not (fpr_counts['tp'] and fpr_counts['fp']):
        return None, fpr
    fpr_cfg = fpr_training_config(fpr_dir, roots, s.fpr_epochs, seed,
                                  partial, prop_path)
    log('step 5: training the FPR network')
    fpr_model = _train(fpr_cfg, s.max_train_iters)
    fpr['trained'] = True
    dets = _fpr_rescore(fpr_model, findings_d, partial, fpr_cfg,
                        osp.join(fpr_dir, 'eval_findings.json'))
    return evaluate_3d(dets, gts), fpr


def run_lens_demo(work_dir: str,
                  settings: Optional[LENSDemoSettings] = None,
                  eval_split: str = 'val') -> dict:
    """Run the five steps and score every row on the 3D protocol.

    Args:
        work_dir (str): an empty (or new) folder, see
            :func:`prepare_work_dir`.
        settings (LENSDemoSettings, optional): sizes; defaults above.
        eval_split (str): the split of dataset 0 scored. Defaults to
            ``'val'``.

    Returns:
        dict: ``settings``, ``rows`` (name -> sensitivities), ``mining``
        (delta, counts and precision / recall against the unannotated
        lesions), ``fpr`` (TP / FP counts), ``seconds`` per step.
    """
    s = settings or LENSDemoSettings()
    logger = MMLogger.get_instance(
        f'lens_demo_{time.time_ns()}',
        log_file=osp.join(work_dir, 'lens_demo.log'))
    seconds: Dict[str, float] = {}
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print_log(f'[lens_demo {time.perf_counter() - t0:6.0f} s] {msg}',
                  logger=logger)

    data = generate_demo_sets(osp.join(work_dir, 'data'), s, eval_split, log)
    partial, roots = data['partial'], data['roots']
    seconds['data'] = time.perf_counter() - t0

    def cfg_of(name):
        return demo_row_config(name, osp.join(work_dir, name), roots,
                               s.epochs, s.seed)

    base_cfg = cfg_of('row_bc')
    eval_ds, gts, series_slices = evaluation_setup(base_cfg, partial,
                                                   eval_split,
                                                   s.eval_max_offset)
    n_slices = sum(map(len, series_slices.values()))
    n_lesions = sum(len(g) for g in gts.values())
    log(f'evaluation: {len(gts)} series, {n_slices} slices, {n_lesions} '
        'lesions (complete truth, unannotated included)')
    rows: Dict[str, dict] = {}
    reference = annotation_reference(eval_ds, gts)
    log(f'reference (annotated key-slice boxes, 1 slice thick): {reference}')

    def timed(key, fn, *args):
        start = time.perf_counter()
        out = fn(*args)
        seconds[key] = seconds.get(key, 0.) + time.perf_counter() - start
        return out

    # Step 1: baseline, (a), (b).
    for name, row in (('baseline', ROWS[0]), ('row_a', ROWS[1])):
        log(f'step 1: training {row}')
        model = timed(f'train {name}', _train, cfg_of(name),
                      s.max_train_iters)
        log(f'evaluating {row}')
        rows[row] = timed('evaluate', _evaluate_model, model, eval_ds, gts,
                          s.eval_max_offset)[0]
        log(f'{row}: {rows[row]}')
    log(f'step 1: training {ROWS[2]} / {ROWS[3]} (one model)')
    model = timed('train row_bc', _train, base_cfg, s.max_train_iters)
    model.test_cfg.expert_fusion.experts = [0]
    rows[ROWS[2]] = timed('evaluate', _evaluate_model, model, eval_ds, gts,
                          s.eval_max_offset)[0]
    log(f'{ROWS[2]}: {rows[ROWS[2]]}')
    # Step 2: proposal fusion.
    model.test_cfg.expert_fusion.experts = None
    rows[ROWS[3]] = timed('evaluate', _evaluate_model, model, eval_ds, gts,
                          s.eval_max_offset)[0]
    log(f'{ROWS[3]}: {rows[ROWS[3]]}')
    # Step 3: mining on dataset 0's training series.
    log('step 3: mining missing annotations')
    mined_path = osp.join(partial, 'lens_mined.json')
    mining = timed('mining', mine_demo, model, base_cfg, partial, s,
                   mined_path)
    mining['generated_partial_set'] = data['summary']
    log(f'mining: {json.dumps(mining, default=float)}')
    # Step 4: retrain with the mined annotations.
    log(f'step 4: retraining {ROWS[4]}')
    cfg_d = with_mined_file(cfg_of('row_d'), mined_path)
    model_d = timed('train row_d', _train, cfg_d, s.max_train_iters)
    rows[ROWS[4]], findings_d = timed('evaluate', _evaluate_model, model_d,
                                      eval_ds, gts, s.eval_max_offset)
    log(f'{ROWS[4]}: {rows[ROWS[4]]}')
    # Step 5: 3D FPR.
    log('step 5: FPR proposals of (d) on the training series')
    res, fpr = timed('fpr', train_fpr_and_rescore, model_d, cfg_d,
                     findings_d, mined_path, partial, roots,
                     osp.join(work_dir, 'fpr'), s, s.seed, gts, log)
    not_run = {}
    if res is None:
        # a row that did not run is marked so, never printed as a result
        not_run[ROWS[5]] = ('the FPR network was not trained: no true- or '
                            'no false-positive proposal of (d)')
        log(f'step 5: {ROWS[5]} not run: {not_run[ROWS[5]]}')
    rows[ROWS[5]] = res
    log(f'{ROWS[5]}: {res}')
    seconds['total'] = time.perf_counter() - t0
    return dict(settings=asdict(s), eval_split=eval_split,
                eval_series=len(gts), eval_slices=int(n_slices),
                rows=rows, not_run=not_run, reference=reference,
                mining=mining, fpr=fpr,
                seconds={k: round(v, 1) for k, v in seconds.items()})


def _plan_only(iter_fn, dataset, max_offset):
    """(series_dir, z) of the slices :func:`iter_series_slices` visits,
    without running the pipeline."""
    pipeline = dataset.pipeline
    dataset.pipeline = lambda item: None
    try:
        yield from iter_fn(dataset, max_offset, show_progress=False)
    finally:
        dataset.pipeline = pipeline
