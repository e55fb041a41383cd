# Copyright (c) mmlesion contributors. All rights reserved.
"""Step 3 of the LENS demo (Sec. III-C): calibrate delta on the demo's
embedding, mine dataset 0's training series with a trained (c) model and
point the row (d) config at the mining file. Split from
:mod:`projects.lens.lens_demo` (one concept per file)."""
import copy
import os.path as osp
from typing import Any, Sequence

from mmengine.config import Config

PAPER_DELTA = 0.15


def lens_train_set(cfg: Config, index: int):
    """Dataset ``index`` of a LENS config's training set, read with its
    test pipeline (as :func:`~projects.lens.lens_demo.load_lens_and_train_set`)."""
    from mmdet.registry import DATASETS
    from mmengine.registry import DefaultScope
    ds = copy.deepcopy(cfg.train_dataloader.dataset.datasets[index])
    ds.update(type='DeepLesionDataset', test_mode=True,
              pipeline=copy.deepcopy(cfg.test_pipeline))
    for key in ('mined_ann_file', 'use_negatives'):
        ds.pop(key, None)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return DATASETS.build(ds)


def calibrate_demo_delta(model, cfg: Config, partial: str,
                         min_precision: float = 0.9) -> dict:
    """delta of intra-patient matching for this model's embedding, as
    ``tools/analysis_tools/calibrate_intra_patient_delta.py`` does, on the
    **annotated** lesions of dataset 0's training split (what a user of
    partially labelled data has; their identity across the patient's
    studies is the generator's ``lesion_id``): the largest delta whose
    pairs below it are >= ``min_precision`` same-lesion pairs
    (:func:`~mmlesion.methods.lens.mining.calibration.choose_delta`).

    With no same-lesion pair (tiny sets), the paper's 0.15 is used and the
    result says so (``source``).

    Returns:
        dict: ``delta``, ``source`` (``'calibrated'`` or
        ``'paper (no same-lesion pair)'``) and the calibration statistics.
    """
    from mmlesion.methods.lens.mining.calibration import (choose_delta,
                                                          demo_pairs)
    from mmlesion.methods.lens.mining.strategies import summarise
    same, diff, info = demo_pairs(model, cfg, partial, split='train',
                                  annotated_only=True)
    out = dict(info, same=summarise(same), different=summarise(diff))
    if not len(same):
        return dict(out, delta=PAPER_DELTA,
                    source='paper (no same-lesion pair)')
    chosen = choose_delta(same, diff, min_precision)
    return dict(out, **chosen, source='calibrated')


#: Proposals below this score take no part in mining (the demo's choice).
PROPOSAL_SCORE_THR = 0.05


def demo_mining_series(model, cfg: Config, max_offset: int) -> list:
    """The proposals LENS mines from on the demo: dataset 0's training
    series with the partially labelled expert, dataset 1's (the single-type
    set's) expert for cross-dataset mining, slices within ``max_offset`` of
    a key slice.

    Returns:
        list[SeriesMining]: one per series, proposals collected.
    """
    from mmlesion.methods.lens.mining.proposals import collect_series_proposals
    return collect_series_proposals(model, lens_train_set(cfg, 0), 0, [1],
                                    max_offset)


def mine_demo(model, cfg: Config, partial: str, s: Any,
              mined_path: str,
              strategies: Sequence[str] = ('propagation', 'intra_patient',
                                           'cross_dataset')) -> dict:
    """Step 3 on dataset 0's training series with a trained (c) model:
    delta (``s.dist_thr`` or :func:`calibrate_demo_delta`), the
    ``strategies`` (default all three), the mining file written to
    ``mined_path``, and the mined / uncertain boxes scored against the
    generator's truth.

    Args:
        model: the trained row (c) model.
        cfg (Config): its config.
        partial (str): the partially labelled demo set's root.
        s (LENSDemoSettings): the demo's settings
            (:class:`projects.lens.lens_demo.LENSDemoSettings`; not imported
            here, so that the two modules do not import each other).
        mined_path (str): where the mining file goes.
        strategies (sequence[str]): the mining strategies.

    Returns:
        dict: ``delta`` (value and how it was chosen), ``counts``,
        ``demo_evaluation`` (:func:`~mmlesion.methods.lens.mining.demo_eval.
        evaluate_mining`).
    """
    from mmlesion.methods.lens.mining import MiningSettings, mine_series
    from mmlesion.methods.lens.mining.demo_eval import evaluate_mining
    from mmlesion.datasets.deeplesion.mined_file import write_mined_file
    from mmlesion.methods.lens.mining.proposals import series_to_entries
    if s.dist_thr is None:
        delta = calibrate_demo_delta(model, cfg, partial,
                                     s.min_match_precision)
    else:
        delta = dict(delta=float(s.dist_thr), source='given')
    series = demo_mining_series(model, cfg, s.mining_max_offset)
    counts = mine_series(series, MiningSettings(
        dist_thr=delta['delta'], proposal_score_thr=PROPOSAL_SCORE_THR,
        match_score_thr=s.match_score_thr,
        strategies=tuple(strategies))).to_dict()
    entries = series_to_entries(series)
    write_mined_file(mined_path, entries,
                     dict(dataset_index=0, single_type_experts=[1],
                          dist_thr=delta['delta'],
                          match_score_thr=s.match_score_thr,
                          strategies=list(strategies), counts=counts,
                          embedding='L2-normalised RoI features after the '
                          'shared FCs of LENS (substitute for LesaNet)'))
    return dict(delta=delta, match_score_thr=s.match_score_thr,
                counts=counts, demo_evaluation=evaluate_mining(
                    entries, osp.join(partial, 'demo_meta.json')))


def with_mined_file(cfg_d: Config, mined_path: str) -> Config:
    """The row (d) config reading ``mined_path`` (dataset 0's
    ``mined_ann_file``). ``mined_path`` is a path from the current folder
    (a study's row folder); the dataset reads a relative ``mined_ann_file``
    from its ``data_root``, so the path is written absolute."""
    cfg_d.train_dataloader.dataset.datasets[0].mined_ann_file = osp.abspath(
        mined_path)
    return cfg_d
