# Copyright (c) mmlesion contributors. All rights reserved.
"""LUNA16 FROC, CPM, bootstrap band and TNP (docs/protocols.md §3).

Vectorised functions over the official CSV formats that give the numbers of
the official ``noduleCADEvaluationLUNA16.py`` (Setio et al., Medical Image
Analysis 42, 2017; used by the 3D Aggregated Faster R-CNN paper, §IV-A),
including the corners that change numbers:

1. **Scans** are the rows of ``seriesuids.csv``; nodules and excluded
   findings of other scans are ignored, their candidates an error by
   default (``unknown='ignore'``: ignored, as the official script does).
2. **At most 100 marks per scan**: those whose probability is *strictly
   greater* than the ``(max_marks + 1)``-th largest (ties at the cut are
   all dropped).
3. **Hit test** (strict): squared distance ``((dx² + dy²) + dz²) < r²``
   with ``r = diameter / 2``; any diameter ``< 0`` (``-1`` = unknown in
   ``annotations_excluded.csv``) is 10 mm, for nodules and excluded findings.
4. Every included nodule hit by a mark is one TP entry with the largest
   probability of its marks (the others dropped); **one mark hitting two
   nodules is a TP for both**.
5. A mark hitting only excluded findings is dropped; every other kept mark
   not on a nodule is an FP entry.
6. A missed nodule counts in the number of lesions, not in the ROC.
7. The curve is ``sklearn.metrics.roc_curve`` over the TP and FP entries
   (default ``drop_intermediate=True``); FPs per scan = ``fpr x FP entries /
   scans`` (all zero when there is no FP) and sensitivity = ``tpr x detected
   / nodules``. CPM = mean of ``np.interp`` of that curve at 1/8, 1/4, 1/2,
   1, 2, 4 and 8 FPs per scan.
8. **Bootstrap**: scans are resampled with replacement ``num_resamples``
   times (the FP denominator stays the number of scans); each curve is
   interpolated (``np.interp``) on ``np.linspace(0.125, 8, 10000)`` and
   stored as float32; at each point the values are sorted and the band is
   ``sorted[floor(pz n)]`` .. ``sorted[floor((1 - pz) n)]`` with ``pz = (1 -
   confidence) / 2``, the mean ``np.average`` of the sorted values.
   Resample ``i`` draws its scan indices from
   ``np.random.RandomState(seed).randint(num_scans, size=(n, num_scans))[i]``,
   the stream the official script consumes after ``np.random.seed(seed)``.

Where the official script crashes or returns NaN: no TP entry gives
sensitivity 0, no nodule NaN sensitivities, no entry the single point (0,
0). The bootstrap's curves are weighted cumulative counts over one global
score order: ``roc_curve``'s points with ``drop_intermediate=False``, the
same interpolation but for rounding (~1e-16, then float32).

**TNP** (true negative patients, 3D Aggregated Faster R-CNN §IV-G): the
probability threshold is the highest at which the sensitivity reaches
``tnp_sensitivity`` (0.95), read on the undropped curve; a scan without any
included nodule is a true negative when none of its FP marks has a
probability ``>=`` that threshold (marks on excluded findings do not count,
as in the FROC). TNP = true negatives / scans without nodules; ``None`` when
the sensitivity is never reached.

Modules: :mod:`.io` (CSV files), :mod:`.matching` (cap and hit test),
:mod:`.froc` (curve, operating points, TNP), :mod:`.bootstrap` (band),
:mod:`.evaluate` (all in one call), :mod:`.score_cut` (a test-time score
cut's effect) and :mod:`.subsets` (the DeepLesion tables' lesion subsets);
every name is re-exported here.
"""
from .bootstrap import (BOOTSTRAP_FP_RANGE, BOOTSTRAP_NUM_POINTS,
                        LUNA16Bootstrap, bootstrap_froc, bootstrap_indices)
from .evaluate import LUNA16Result, evaluate_luna16
from .froc import (LUNA16_FP_RATES, luna16_froc_curve, rate_key,
                   sensitivity_at, true_negative_patients)
from .io import (LUNA16Candidates, LUNA16Findings, read_candidate_column,
                 read_candidates_csv, read_findings_csv, read_seriesuids_csv,
                 write_candidates_csv)
from .matching import (MARK_FP, MARK_IRRELEVANT, MARK_TP, MAX_MARKS_PER_SCAN,
                       UNKNOWN_DIAMETER_MM, LUNA16Match, cap_marks,
                       match_luna16, same_scan_pairs, scan_indices)
from .score_cut import (ScoreCutEffect, ScoreCutSettings, ScoreCutSide,
                        apply_score_cut, score_cut_effect)
from .subsets import (LesionSubset, below_diameter, lesion_subsets,
                      select_findings)

__all__ = [
    'LUNA16Findings', 'LUNA16Candidates', 'read_findings_csv',
    'read_candidates_csv', 'read_seriesuids_csv', 'write_candidates_csv',
    'MAX_MARKS_PER_SCAN', 'UNKNOWN_DIAMETER_MM', 'MARK_TP', 'MARK_IRRELEVANT',
    'MARK_FP', 'scan_indices', 'cap_marks', 'same_scan_pairs', 'LUNA16Match',
    'match_luna16', 'LUNA16_FP_RATES', 'rate_key', 'luna16_froc_curve',
    'sensitivity_at', 'true_negative_patients', 'BOOTSTRAP_FP_RANGE',
    'BOOTSTRAP_NUM_POINTS', 'bootstrap_indices', 'LUNA16Bootstrap',
    'bootstrap_froc', 'LUNA16Result', 'evaluate_luna16', 'LesionSubset',
    'below_diameter', 'lesion_subsets', 'select_findings',
    'read_candidate_column', 'ScoreCutSettings', 'ScoreCutSide',
    'ScoreCutEffect', 'apply_score_cut', 'score_cut_effect'
]
