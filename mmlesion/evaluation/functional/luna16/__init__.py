# Copyright (c) mmlesion contributors. All rights reserved.
"""LUNA16 FROC, CPM, bootstrap band and TNP (docs/protocols.md §3).

Vectorised functions over the official CSV formats that give the numbers of
the official ``noduleCADEvaluationLUNA16.py`` (Setio et al., Medical Image
Analysis 42, 2017; used by the 3D Aggregated Faster R-CNN paper, §IV-A):
the cap, hit test, curve, CPM, bootstrap and TNP rules of
docs/protocols.md §3, with every corner that changes numbers:

* **Scans** are the rows of ``seriesuids.csv``; nodules and excluded
  findings of other scans are ignored, their candidates an error by
  default (``unknown='ignore'``: ignored, as the official script does).
* The hit test is ``((dx² + dy²) + dz²) < r²`` in that order.
* With no FP entry every FPs per scan is zero.
* **Bootstrap**: the curves are stored as float32; the band's mean is
  ``np.average`` of the sorted values. Resample ``i`` draws its scan
  indices from ``np.random.RandomState(seed).randint(num_scans, size=(n,
  num_scans))[i]``, the stream the official script consumes after
  ``np.random.seed(seed)``.
* Where the official script crashes or returns NaN: no TP entry gives
  sensitivity 0, no nodule NaN sensitivities, no entry the single point (0,
  0). The bootstrap's curves are weighted cumulative counts over one global
  score order: ``roc_curve``'s points with ``drop_intermediate=False``, the
  same interpolation but for rounding (~1e-16, then float32).
* **TNP**: the threshold is the highest probability at which the
  sensitivity reaches ``tnp_sensitivity``, read on the undropped curve;
  marks on excluded findings do not count; ``None`` when the sensitivity is
  never reached.

Modules: :mod:`.io` (CSV files), :mod:`.matching` (cap and hit test),
:mod:`.froc` (curve, operating points, TNP), :mod:`.bootstrap` (band),
:mod:`.evaluate` (all in one call), :mod:`.score_cut` (a test-time score
cut's effect) and :mod:`.subsets` (the DeepLesion tables' lesion subsets);
its public names are re-exported here.
"""
from .bootstrap import (BOOTSTRAP_FP_RANGE, BOOTSTRAP_NUM_POINTS,  # noqa
                        BootstrapSettings, LUNA16Bootstrap, bootstrap_froc,
                        bootstrap_indices)
from .evaluate import (LUNA16Options, LUNA16Result,  # noqa: F401
                       evaluate_luna16)
from .froc import (LUNA16_FP_RATES, luna16_froc_curve, rate_key,  # noqa
                   sensitivity_at, true_negative_patients)
from .io import (LUNA16Candidates, LUNA16Findings,  # noqa: F401
                 read_candidate_column, read_candidates_csv,
                 read_findings_csv, read_seriesuids_csv,
                 write_candidates_csv)
from .matching import (MARK_FP, MARK_IRRELEVANT, MARK_TP,  # noqa: F401
                       MAX_MARKS_PER_SCAN, UNKNOWN_DIAMETER_MM, LUNA16Match,
                       MatchSettings, cap_marks, match_luna16,
                       same_scan_pairs, scan_indices)
from .score_cut import (ScoreCutEffect, ScoreCutSettings,  # noqa: F401
                        ScoreCutSide, apply_score_cut, score_cut_effect)
from .subsets import (LesionSubset, below_diameter,  # noqa: F401
                      lesion_subsets, select_findings)
