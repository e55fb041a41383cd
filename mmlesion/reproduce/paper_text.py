# Copyright (c) mmlesion contributors. All rights reserved.
"""The papers' numbers that documents quote outside the compared metrics.

With :mod:`.paper_results` (the numbers a reproduced table is set beside)
this is the one table of paper numbers: a number a document quotes from a
paper is a compared number, one of :data:`PAPER_TEXT` (parameters, times,
the papers' other columns, each with where it is printed) or a gain of
:data:`PAPER_DIFFERENCES` computed from the compared numbers
(:func:`quotable_numbers`; ``tests/test_docs/test_paper_quotes.py`` fails
on a quoted number that is none of them). Each of these numbers is typed
with its place (:class:`Printed`: table or section, row, column, and the
names a document gives that row; :func:`placed_numbers`), so that the same
test fails on a number quoted beside another row, model or section than
the paper's.
"""
from typing import Dict, List, NamedTuple, Optional, Tuple

from .paper_results import PAPER_RESULTS, QUOTED_MODELS


class Printed(NamedTuple):
    """A number a paper prints (or one derived from printed ones), and
    where it stands.

    Args:
        value (float): the number.
        where (str): its table or section (``'Table III'``,
            ``'Sec. IV-F'``), as a document cites it.
        row (str): the row, model or setting it belongs to.
        column (str): its column or quantity.
        names (tuple[str]): how a document names that row (or column)
            beside the number; a document that quotes the number beside
            another entry's name instead fails
            ``tests/test_docs/test_paper_quotes.py``. Empty: not checked.
        unit (str): what a document writes after it (``'s'``, ``'%'``,
            ``'K'``, ``'points'``; empty: a bare number).
        printed (bool): False for a number derived from printed ones (a
            ratio of two times), which a document must call derived.
    """
    value: float
    where: str
    row: str
    column: str
    names: Tuple[str, ...] = ()
    unit: str = ''
    printed: bool = True


_WO_LM = ('without Local Magnification', 'w/o Local Magnification',
          'without Magnify', 'no Local Magnification', '3D-AG-LM',
          'wo-magnify')
_WITH_LM = ('with Local Magnification', 'Local Magnification', 'Magnify',
            'DA + Magnify')
_RPN = ('RPN', 'baseline RPN', 'RPN baseline')
_TABLE4_3DAG = ('3D-AG (Ours)', 'single model', 'single-model')
_A3D_TIME = 'inference time per pre-processed scan, 4 Tesla K80'

#: numbers the papers print outside the compared metrics that the
#: documents quote: method -> name -> :class:`Printed`
PAPER_TEXT: Dict[str, Dict[str, Printed]] = {
    'elixirnet': {
        'params_elixirnet_fpn_m': Printed(
            28.4, 'Table 1', 'ElixirNet w FPN', 'parameters (M)',
            ('ElixirNet w FPN', 'ElixirNet on the FPN', 'ElixirNet-FPN'),
            'M'),
        'params_elixirnet_c4_m': Printed(
            19.9, 'Table 1', 'ElixirNet (C4)', 'parameters (M)',
            ('ElixirNet (C4)', 'ElixirNet-C4', 'C4'), 'M'),
        'params_elixirnet_dcnv2_m': Printed(
            29.3, 'Table 1', 'ElixirNet w Deformv2', 'parameters (M)',
            ('Deformv2', 'DCNv2'), 'M'),
        'rtm_multitype_gain': Printed(
            2, 'Table 4', 'ElixirNet (with RTM) over ElixirNet w/o RTM',
            'text on Table 4: "an average 2% sensitivity of all types"',
            ('RTM', ), 'points'),
        # Table 3 (KiTS19): three sensitivity columns whose FP rates are
        # not legible in our copy
        **{f'kits19_sens_{row}_{i}': Printed(
            v, 'Table 3', row, f'sensitivity column {i + 1}',
            ('KiTS19', 'Kits19'))
           for row, values in (('elixirnet_fpn', (54.69, 57.93, 61.2)),
                               ('elixirnet_dcnv2', (67.28, 69.02, 80.05)))
           for i, v in enumerate(values)},
    },
    'retinanet_lesion': {
        'ms_original': Printed(28, 'Table 1', 'original RetinaNet',
                               'inference time (ms)',
                               ('original RetinaNet', 'original'), 'ms'),
        'ms_improved': Printed(41, 'Sec. 3', 'improved RetinaNet',
                               '"about 41 ms for each image"',
                               ('improved', 'dense supervision',
                                'attention'), 'ms'),
        'ms_ratio': Printed(round(41 / 28, 2), 'Table 1 and Sec. 3',
                            'improved over original RetinaNet',
                            'the two times above, 41 / 28', printed=False),
    },
    'aggregated3d': {
        'rpn_s_per_scan': Printed(
            3.0, 'Sec. IV-F', 'baseline RPN', _A3D_TIME + ' ("~3.0s")',
            _RPN, 's'),
        'wo_magnify_s_per_scan': Printed(
            4.2, 'Sec. IV-F', '3D Aggregated Faster R-CNN without Local '
            'Magnification', _A3D_TIME + ' ("~4.2s")', _WO_LM, 's'),
        'table4_s_per_scan': Printed(
            4.2, 'Table IV', '3D-AG (Ours) (FROC 0.939: Table III\'s crop '
            '128†, DA, no Magnify)', 'Inference Time ("4.2s /Scan")',
            _TABLE4_3DAG + _WO_LM, 's'),
        'magnify_s_per_scan': Printed(
            5.0, 'Sec. IV-F', '3D Aggregated Faster R-CNN with Local '
            'Magnification', _A3D_TIME + ' ("~5.0s")', _WITH_LM, 's'),
        'score_thr': Printed(
            0.269, 'Sec. IV-F', 'every model at test',
            '"probability threshold ... 0.269 (Sigmoid(-1))"',
            ('threshold', 'score_thr', 'sigmoid(-1)', 'cut')),
        'wo_magnify_over_rpn_time': Printed(
            round(4.2 / 3.0, 1), 'Sec. IV-F', 'without Local Magnification '
            'over the baseline RPN', 'the two times above, 4.2 / 3.0',
            _WO_LM + _RPN, 'x', printed=False),
        'magnify_over_rpn_time': Printed(
            round(5.0 / 3.0, 1), 'Sec. IV-F', 'with Local Magnification '
            'over the baseline RPN', 'the two times above, 5.0 / 3.0',
            _WITH_LM + _RPN, 'x', printed=False),
        # Table II's sensitivity column (FROC/Sensitivity), rows a-f and
        # the quoted Res18 and DualPath rows
        **{f'table2_sens_{row}': Printed(v, 'Table II', f'row {row}',
                                         'sensitivity')
           for row, v in zip(('a', 'b', 'c', 'd', 'e', 'f', 'res18',
                              'dualpath'), (0.896, 0.941, 0.956, 0.982,
                                            0.970, 0.977, 0.946, 0.958))},
        'resblock_abs_s_per_scan': Printed(
            15, 'Table IV', 'ResBlock† [11]', 'Inference Time ("15s /Scan"; '
            'Sec. IV-F: "~15s per pre-processed scan" on 4 Titan XPs)',
            ('ResBlock', '[11]', 'Xie'), 's'),
        # Table III, RPN / FPRN / Combined, FROC / sensitivity, per row
        **{f'table3_{row}_{part}_{m}': Printed(v, 'Table III', row,
                                               f'{part} {m}')
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
        'intra_patient_precision_pct': Printed(
            90, 'Sec. VI-D', 'intra-patient lesion matching (Table III)',
            'share of 100 checked new lesion instances that are true '
            '("found 90% are true lesions")',
            ('new lesion instances', 'new instances', 'new lesion instance',
             'intra-patient'), '%'),
        'intra_patient_checked': Printed(
            100, 'Sec. VI-D', 'intra-patient lesion matching (Table III)',
            'new lesion instances checked by hand',
            ('new lesion instances', 'new instances'), ''),
    },
}

#: the columns of :data:`.paper_results.PAPER_RESULTS` whose numbers the
#: documents quote in prose, placed like :data:`PAPER_TEXT`: metric key ->
#: (table, column, names, unit); the row is the model's
RESULT_COLUMNS: Dict[str, Tuple[str, str, Tuple[str, ...], str]] = {
    'lens/lesions_3d_k': ('Table III', '# 3D GT (lesions)',
                          ('3D GT', 'lesions', 'lesion', 'lesion GTs',
                           'instances'), 'K'),
    'lens/boxes_2d_k': ('Table III', '# 2D GT (boxes)',
                        ('2D GT', 'boxes', '2D boxes', 'lesion GTs'), 'K'),
    'lens/uncertain_2d_k': ('Table III', '# 2D uncertain',
                            ('uncertain', '2D uncertain'), 'K'),
    'lens/slices_k': ('Table III', '# Training slices',
                      ('slices', 'training slices', 'key slices'), 'K'),
}

_L9 = 'densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice'
_L4 = ('densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-'
       '9slice')
_LA, _LM = 'lens-afp_' + _L9, 'lens-afp-multi_' + _L4
_LF = 'lens-afp-multi-fusion_' + _L4
_LD = 'lens-afp-multi-fusion-mining_' + _L4

class Gain(NamedTuple):
    """A difference of two paper numbers that documents quote as a gain
    (derived from the table's rows; :class:`Printed`'s ``names``).

    Args:
        model (str): the model of :data:`.paper_results.PAPER_RESULTS`.
        minus (str): the model it is compared with.
        key (str): the metric key.
        where (str): the table of the two rows.
        names (tuple[str]): how a document names the step.
    """
    model: str
    minus: str
    key: str
    where: str
    names: Tuple[str, ...]


_E3 = '_r50_fpn_4xb2-1x_deeplesion-3slice'
_FPN, _ALB = 'faster-rcnn' + _E3, 'elixirnet-alb-fig3geno' + _E3
_TRPN = 'elixirnet-trpn-noaux' + _E3
_SEARCH = '_r50_fpn_4xb4-15e_deeplesion-3slice'
_LENS = 'froc3d/mean@0.125-8'

#: differences of two paper numbers that the documents quote as a gain:
#: method -> name -> :class:`Gain`
PAPER_DIFFERENCES: Dict[str, Dict[str, Gain]] = {
    'elixirnet': {
        'trpn_over_fpn': Gain(_TRPN, _FPN, 'sens@3', 'Table 5',
                              ('TRPN', )),
        'alb_over_fpn': Gain(_ALB, _FPN, 'sens@3', 'Table 5', ('ALB', )),
        'trpn_over_focal_rpn': Gain(
            _TRPN, 'elixirnet-rpnfocal' + _E3, 'sens@3', 'Table 5',
            ('TRPN', 'focal loss', 'focal-loss')),
        'rtm_over_alb': Gain('elixirnet-alb-rtm-fig3geno' + _E3, _ALB,
                             'sens@3', 'Table 5', ('RTM', )),
        'elixirnet_over_fpn': Gain('elixirnet-fig3geno' + _E3, _FPN,
                                   'sens@3', 'Table 5', ('ElixirNet', )),
        'rtm_over_trpn_alb': Gain(
            'elixirnet-fig3geno' + _E3, 'elixirnet-trpn-alb-fig3geno' + _E3,
            'sens@3', 'Table 5', ('RTM', )),
        'random_below_searched': Gain(
            'elixirnet-alb-search-random' + _SEARCH, _ALB, 'sens@3',
            'Table 6', ('random', )),
        'dartsspace_below_searched': Gain(
            'elixirnet-alb-search-dartsspace' + _SEARCH, _ALB, 'sens@3',
            'Table 6', ('search space', 'DARTS')),
    },
    # Table I's steps, average sensitivity: (a) over the baseline, (b)
    # over (a), (c) over (b), (d) over (c), (e) over (d); Table III's
    # cross-dataset step
    'lens': {name: Gain(a, b, _LENS, where, names)
             for name, a, b, where, names in (
                 ('afp_over_mulan', _LA, 'mulan_' + _L9, 'Table I',
                  ('AFP', )),
                 ('multi_over_afp', _LM, _LA, 'Table I',
                  ('multi-dataset', 'multiple datasets')),
                 ('fusion_over_multi', _LF, _LM, 'Table I',
                  ('fusion', 'proposal fusion')),
                 ('mining_over_fusion', _LD, _LF, 'Table I',
                  ('mining', )),
                 ('fpr_over_mining', 'lens-fpr_resnet18-3d_1xb32-radam-6e_'
                  'deeplesion', _LD, 'Table I', ('FPR', )),
                 ('cross_dataset_over_intra_patient',
                  'lens-afp-mining-lesion-slices_' + _L9,
                  'lens-afp-mining-propagation-intrapatient_' + _L9,
                  'Table III', ('cross-dataset', )))},
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
    gain = PAPER_DIFFERENCES[method][name]
    return round(PAPER_RESULTS[gain.model][gain.key] -
                 PAPER_RESULTS[gain.minus][gain.key], 6)


def placed_numbers(method: Optional[str] = None) -> List[Printed]:
    """Every paper number documents quote with its place: the entries of
    :data:`PAPER_TEXT`, the compared numbers of :data:`RESULT_COLUMNS`
    and the gains of :data:`PAPER_DIFFERENCES` (unit ``points``),
    of one method's paper (None: all)."""
    out = [p for m, named in PAPER_TEXT.items()
           if method is None or m == method for p in named.values()]
    for model, metrics in PAPER_RESULTS.items():
        if method is None or model_method(model) == method:
            out += [Printed(v, where, model, column, names, unit)
                    for key, (where, column, names, unit)
                    in RESULT_COLUMNS.items()
                    for v in [metrics.get(key)] if v is not None]
    for m, named in PAPER_DIFFERENCES.items():
        if method is None or m == method:
            # a difference of two printed rows: documents quote it as the
            # step between them (the row names say which)
            out += [Printed(abs(paper_difference(m, n)), g.where,
                            f'{g.model} minus {g.minus}', g.key, g.names,
                            'points')
                    for n, g in named.items()]
    return out


def quotable_numbers(method: Optional[str] = None) -> Tuple[float, ...]:
    """Every paper number a document may quote: the compared numbers
    (a CPM also in percent), :data:`PAPER_TEXT` and the gains of
    :data:`PAPER_DIFFERENCES`, of one method's paper (None: all)."""
    out = set()
    for model, metrics in PAPER_RESULTS.items():
        if method is None or model_method(model) == method:
            for v in metrics.values():
                out.update({v, round(v * 100, 6)} if abs(v) < 1 else {v})
    out.update(p.value for p in placed_numbers(method))
    return tuple(sorted(out))
