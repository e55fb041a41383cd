# Copyright (c) mmlesion contributors. All rights reserved.
"""The papers' numbers that documents quote outside the compared metrics.

With :mod:`.paper_results` (the numbers a reproduced table is set beside)
this is the one table of paper numbers: a number a document quotes from a
paper is a compared number, one of :data:`PAPER_TEXT` (parameters, times,
the papers' other columns, each with where it is printed) or a gain of
:data:`PAPER_DIFFERENCES` computed from the compared numbers
(:func:`quotable_numbers`; ``tests/test_docs/test_paper_quotes.py`` fails
on a quoted number that is none of them).
"""
from typing import Dict, Optional, Tuple

from .paper_results import PAPER_RESULTS, QUOTED_MODELS


#: numbers the papers print outside the compared metrics that the
#: documents quote: method -> name -> (value, where in the paper)
PAPER_TEXT: Dict[str, Dict[str, Tuple[float, str]]] = {
    'elixirnet': {
        'params_elixirnet_fpn_m': (28.4, 'Table 1, parameters (M), '
                                   'ElixirNet w FPN'),
        'params_elixirnet_c4_m': (19.9, 'Table 1, parameters (M), '
                                  'ElixirNet (C4)'),
        'params_elixirnet_dcnv2_m': (29.3, 'Table 1, parameters (M), '
                                     'ElixirNet w Deformv2'),
        'rtm_multitype_gain': (2, 'text on Table 4: "an average 2% '
                               'sensitivity of all types"'),
        # Table 3 (KiTS19): three sensitivity columns whose FP rates are
        # not legible in our copy
        **{f'kits19_sens_{row}_{i}': (v, f'Table 3, {row}, sensitivity '
                                      f'column {i + 1}')
           for row, values in (('elixirnet_fpn', (54.69, 57.93, 61.2)),
                               ('elixirnet_dcnv2', (67.28, 69.02, 80.05)))
           for i, v in enumerate(values)},
    },
    'retinanet_lesion': {
        'ms_original': (28, 'Table 1, inference time, original RetinaNet'),
        'ms_improved': (41, 'Sec. 3: "about 41 ms for each image"'),
        'ms_ratio': (round(41 / 28, 2), 'the two times above, 41 / 28'),
    },
    'aggregated3d': {
        'rpn_s_per_scan': (3.0, 'Sec. V: baseline RPN "~3.0s" per '
                           'pre-processed scan, 4 Tesla K80'),
        'wo_magnify_s_per_scan': (4.2, 'Sec. V: 3D Aggregated Faster '
                                  'R-CNN without Local Magnification '
                                  '"~4.2s"'),
        'magnify_s_per_scan': (5.0, 'Sec. V: with Local Magnification '
                               '"~5.0s"'),
        'score_thr': (0.269, 'Sec. V: "probability threshold ... 0.269 '
                      '(Sigmoid(-1))"'),
        'wo_magnify_over_rpn_time': (round(4.2 / 3.0, 1),
                                     'the two times above, 4.2 / 3.0'),
        # Table II's sensitivity column (FROC/Sensitivity), rows a-f and
        # the quoted Res18 and DualPath rows
        **{f'table2_sens_{row}': (v, f'Table II, row {row}, sensitivity')
           for row, v in zip(('a', 'b', 'c', 'd', 'e', 'f', 'res18',
                              'dualpath'), (0.896, 0.941, 0.956, 0.982,
                                            0.970, 0.977, 0.946, 0.958))},
        'resblock_abs_s_per_scan': (15, 'Table IV, ResBlock† [11], '
                                    '"15s /Scan"'),
        # Table III, RPN / FPRN / Combined, FROC / sensitivity, per row
        **{f'table3_{row}_{part}_{m}': (v, f'Table III, {row}, {part} {m}')
           for row, values in (
               ('crop96', (.911, .970, .889, .946, .917, .970)),
               ('crop96_magnify', (.916, .977, .902, .963, .919, .976)),
               ('crop96_alternating', (.908, .972, .894, .962, .912, .972)),
               ('crop128', (.923, .976, .889, .944, .926, .976)),
               ('crop128_magnify', (.925, .983, .905, .957, .930, .981)),
               ('crop128abs_wo_da', (.920, .972, .895, .955, .926, .964)),
               ('crop128abs', (.930, .983, .908, .963, .939, .985)),
               ('crop128abs_magnify', (.928, .984, .914, .968, .935, .983)),
               ('merged_intersection', (None, None, None, None, .943,
                                        .979)),
               ('merged_union', (None, None, None, None, .942, .991)))
           for (part, m), v in zip(
               [(p, m) for p in ('rpn', 'fprn', 'combined')
                for m in ('froc', 'sens')], values) if v is not None},
    },
    'lens': {
        'intra_patient_precision_pct': (
            90, 'Sec. VI-D on Table III: of 100 new lesion instances of '
            'intra-patient matching, 90 % are true'),
        'intra_patient_checked': (
            100, 'Sec. VI-D on Table III: new lesion instances checked'),
    },
}

_L9 = 'densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice'
_L4 = ('densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-'
       '9slice')
_LA, _LM = 'lens-afp_' + _L9, 'lens-afp-multi_' + _L4
_LF = 'lens-afp-multi-fusion_' + _L4
_LD = 'lens-afp-multi-fusion-mining_' + _L4

#: differences of two paper numbers that the documents quote as a gain:
#: method -> name -> (model, minus this model, metric key)
PAPER_DIFFERENCES: Dict[str, Dict[str, Tuple[str, str, str]]] = {
    'elixirnet': {
        'trpn_over_fpn': (
            'elixirnet-trpn-noaux_r50_fpn_4xb2-1x_deeplesion-3slice',
            'faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice', 'sens@3'),
        'trpn_over_focal_rpn': (
            'elixirnet-trpn-noaux_r50_fpn_4xb2-1x_deeplesion-3slice',
            'elixirnet-rpnfocal_r50_fpn_4xb2-1x_deeplesion-3slice',
            'sens@3'),
        'rtm_over_alb': (
            'elixirnet-alb-rtm-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice',
            'elixirnet-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice',
            'sens@3'),
        'elixirnet_over_fpn': (
            'elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice',
            'faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice', 'sens@3'),
        'rtm_over_trpn_alb': (
            'elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice',
            'elixirnet-trpn-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice',
            'sens@3'),
        'random_below_searched': (
            'elixirnet-alb-search-random_r50_fpn_4xb4-15e_deeplesion-3slice',
            'elixirnet-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice',
            'sens@3'),
        'dartsspace_below_searched': (
            'elixirnet-alb-search-dartsspace_r50_fpn_4xb4-15e_deeplesion-'
            '3slice',
            'elixirnet-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice',
            'sens@3'),
    },
    # Table I's steps, average sensitivity: (a) over the baseline, (b)
    # over (a), (c) over (b), (d) over (c), (e) over (d); Table III's
    # cross-dataset step
    'lens': {name: (a, b, 'froc3d/mean@0.125-8')
             for name, a, b in (
                 ('afp_over_mulan', _LA, 'mulan_' + _L9),
                 ('multi_over_afp', _LM, _LA),
                 ('fusion_over_multi', _LF, _LM),
                 ('mining_over_fusion', _LD, _LF),
                 ('fpr_over_mining', 'lens-fpr_resnet18-3d_1xb32-radam-6e_'
                  'deeplesion', _LD),
                 ('cross_dataset_over_intra_patient',
                  'lens-afp-mining-lesion-slices_' + _L9,
                  'lens-afp-mining-propagation-intrapatient_' + _L9))},
}


#: the first word of a config stem -> its method (configs/<method>/)
_METHOD_OF_PREFIX = {'elixirnet': 'elixirnet', 'faster': 'elixirnet',
                     'retinanet': 'retinanet_lesion',
                     'improved': 'retinanet_lesion',
                     'rpn3d': 'aggregated3d', 'aggregated3d': 'aggregated3d',
                     'lens': 'lens', 'mulan': 'lens'}


def model_method(model: str) -> str:
    """The method folder of a model of :data:`PAPER_RESULTS`."""
    if model in QUOTED_MODELS:
        return QUOTED_MODELS[model]
    return _METHOD_OF_PREFIX[model.split('@')[0].split('-')[0].split('_')[0]]


def paper_difference(method: str, name: str) -> float:
    """A quoted gain of :data:`PAPER_DIFFERENCES`, from the table above."""
    a, b, key = PAPER_DIFFERENCES[method][name]
    return round(PAPER_RESULTS[a][key] - PAPER_RESULTS[b][key], 6)


def quotable_numbers(method: Optional[str] = None) -> Tuple[float, ...]:
    """Every paper number a document may quote: the compared numbers
    (a CPM also in percent), :data:`PAPER_TEXT` and the gains of
    :data:`PAPER_DIFFERENCES`, of one method's paper (None: all)."""
    out = set()
    for model, metrics in PAPER_RESULTS.items():
        if method is None or model_method(model) == method:
            for v in metrics.values():
                out.update({v, round(v * 100, 6)} if abs(v) < 1 else {v})
    for m, named in PAPER_TEXT.items():
        if method is None or m == method:
            out.update(v for v, _ in named.values())
    for m, named in PAPER_DIFFERENCES.items():
        if method is None or m == method:
            out.update(abs(paper_difference(m, n)) for n in named)
    return tuple(sorted(out))
