# Copyright (c) mmlesion contributors. All rights reserved.
"""The 3D Aggregated Faster R-CNN's published numbers (Sun et al. 2021)
that its tables are set beside, the other numbers its documents quote, the
rows of other papers its tables quote and its variants."""
from typing import Dict, Optional, Sequence, Tuple

from mmlesion.apps.reproduce.paper_tables import Printed, ResultRow
from mmlesion.apps.reproduce.variants import Variant

#: 3D Aggregated Faster R-CNN, DeepLesion: Table V's FP rates (per chunk,
#: the paper's "FPs per image")
A3D_DEEPLESION_RATES = (0.5, 1, 2, 4, 8, 16)
#: Table VI's lesion types in its column order (LU, ME, LV, ST, PV, AB, KD,
#: BN), as ``LUNA16Metric``'s breakdown names them, and its size bins
A3D_DEEPLESION_TYPES = ('lung', 'mediastinum', 'liver', 'soft_tissue',
                        'pelvis', 'abdomen', 'kidney', 'bone')
A3D_DEEPLESION_SIZES = ('lt10mm', '10to30mm', 'gt30mm')


def a3d_deeplesion_keys() -> Tuple[str, ...]:
    """The columns of Tables V and VI, in the papers' order, as metric keys
    of ``LUNA16Metric`` (prefix ``luna16``): sensitivity (%) at 0.5 .. 16
    FPs per chunk, their mean ("Avg."), the FROC score (CPM), then the
    sensitivity at 4 FPs per lesion type and per size bin."""
    return tuple(
        [f'luna16/sens@{r:g}' for r in A3D_DEEPLESION_RATES] +
        ['luna16/mean@0.5-16', 'luna16/cpm'] +
        [f'luna16/sens@4_type_{t}' for t in A3D_DEEPLESION_TYPES] +
        [f'luna16/sens@4_size_{b}' for b in A3D_DEEPLESION_SIZES])


def _a3d_deeplesion(table5: Sequence[Optional[float]],
                    table6: Sequence[float]) -> Dict[str, float]:
    """A row of Tables V (0.5 .. 16, Avg., FROC) and VI (types, sizes)."""
    values = list(table5) + list(table6)
    return {k: v for k, v in zip(a3d_deeplesion_keys(), values)
            if v is not None}


#: quoted row of 3D-AG Tables V / VI: 3DCE, 27 slices (Yan et al., MICCAI
#: 2018; the paper's [7])
A3D_3DCE = 'quoted: 3DCE, 27 slices (Yan et al. 2018)'
#: quoted rows of 3D-AG Tables II and IV: Res18 and DualPath of DeepLung
#: (Zhu et al. 2018, the paper's [10]), ResBlock and ResBlock† (Xie 2018,
#: the paper's [11]; † with Anchor Based Sampling)
A3D_RES18 = 'quoted: Res18 (Zhu et al. 2018)'
A3D_DUALPATH = 'quoted: DualPath (Zhu et al. 2018)'
A3D_RESBLOCK = 'quoted: ResBlock (Xie 2018)'
A3D_RESBLOCK_ABS = 'quoted: ResBlock† (Xie 2018)'
#: quoted rows (another paper's method, never run)
QUOTED_MODELS = (A3D_3DCE, A3D_RES18, A3D_DUALPATH, A3D_RESBLOCK,
                 A3D_RESBLOCK_ABS)
#: Table III's merged rows: the candidates of 3D-AG-LM† and 3D-AG† pooled
#: (``merge_luna16_candidates.py``), models without a config of their own
MERGED_MODELS = tuple(f'aggregated3d-merged-{mode}'
                      for mode in ('intersection', 'union'))
#: the entry of a model's TNP (Fig. 4c) in :data:`PAPER_RESULTS`
TNP_SUFFIX = '@tnp'

#: the LUNA16 configs' shared part
_L = '_denseunet3d_anchor1_4xb2-'
#: model -> metric -> the paper's number
PAPER_RESULTS: Dict[str, Dict[str, float]] = {
    # Tables II (the RPN stage) and III (the second stage, Combined): the
    # FROC score
    **{model: {'luna16/cpm': cpm} for model, cpm in (
        # Table II, row a (DenseBlock + anchor1, OHEM, single scale)
        ('rpn3d-ohem-single-scale' + _L + '50e_luna16', 0.839),
        # Table II, row b (DenseBlock + anchor1, focal loss, single scale)
        ('rpn3d-focal-single-scale' + _L + '50e_luna16', 0.868),
        # Table II, row c (DenseBlock + anchor1, OHEM, multi-scale)
        ('rpn3d-ohem' + _L + '50e_luna16', 0.898),
        # Table II, row d (DenseBlock + anchor1, focal loss, multi-scale)
        ('rpn3d-focal' + _L + '50e_luna16', 0.91),
        # Table II, row e (DenseBlock + anchor2, focal loss, multi-scale)
        ('rpn3d-focal_denseunet3d_anchor2_4xb2-50e_luna16', 0.899),
        # Table II, row f (DenseBlock + anchor1†, focal loss, multi-scale)
        ('rpn3d-focal-abs' + _L + '30e_luna16', 0.917),
        # Table III, Crop 96, DA, Joint (Combined)
        ('aggregated3d-wo-magnify' + _L + '50e_luna16-crop96', 0.917),
        # Table III, Crop 96, DA, Magnify, Joint (Combined)
        ('aggregated3d' + _L + '50e_luna16-crop96', 0.919),
        # Table III, Crop 96, DA, Magnify, Alternating (Combined)
        ('aggregated3d-alternating' + _L + '50e_luna16', 0.912),
        # Table III, Crop 128, DA, Joint (3D-AG-LM, Combined)
        ('aggregated3d-wo-magnify' + _L + '50e_luna16', 0.926),
        # Table III, Crop 128, DA, Magnify, Joint (3D-AG, Combined)
        ('aggregated3d' + _L + '50e_luna16', 0.93),
        # Table III, Crop 128†, Joint (no DA, no Magnify, Combined)
        ('aggregated3d-wo-da-abs' + _L + '30e_luna16', 0.926),
        # Table III, Crop 128†, DA, Joint (3D-AG-LM†, Combined)
        ('aggregated3d-wo-magnify-abs' + _L + '30e_luna16', 0.939),
        # Table III, Crop 128†, DA, Magnify, Joint (3D-AG†, Combined)
        ('aggregated3d-abs' + _L + '30e_luna16', 0.935),
        # Table III, Merged (Intersection) of 3D-AG-LM† and 3D-AG†
        ('aggregated3d-merged-intersection', 0.943),
        # Table III, Merged (Union) of the same two (Combined)
        ('aggregated3d-merged-union', 0.942))},
    # Tables II and IV, quoted (FROC score; Table IV: ResBlock† only)
    A3D_RES18: {'luna16/cpm': 0.834},
    A3D_DUALPATH: {'luna16/cpm': 0.842},
    A3D_RESBLOCK: {'luna16/cpm': 0.92},
    A3D_RESBLOCK_ABS: {'luna16/cpm': 0.935},
    # Fig. 4c, TNP (true negative patients at 0.95 sensitivity): Baseline
    # RPN, 3D-AG, 3D-AG-LM and the merged rows, read as the ABS (†) models
    # the merged rows pool (and Table II row f, their RPN)
    **{model + TNP_SUFFIX: {'luna16/tnp': tnp} for model, tnp in (
        ('rpn3d-focal-abs' + _L + '30e_luna16', 0.38),
        ('aggregated3d-merged-union', 0.714),
        ('aggregated3d-abs' + _L + '30e_luna16', 0.721),
        ('aggregated3d-wo-magnify-abs' + _L + '30e_luna16', 0.725),
        ('aggregated3d-merged-intersection', 0.812))},
    # Tables V and VI, RPN Baseline
    'rpn3d-focal_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d':
    _a3d_deeplesion((65.74, 73.89, 80.99, 86.56, 91.4, 94.4, 82.17, 0.708),
                    (91, 88, 87, 80, 85, 80, 80, 69, 82, 88, 80)),
    # Tables V and VI, 3D-AG
    'aggregated3d_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d':
    _a3d_deeplesion((74.08, 81.42, 86.08, 89.38, 92.08, 94.82, 86.31, 0.771),
                    (93, 89, 92, 84, 90, 86, 83, 70, 83, 90, 91)),
    # Tables V and VI, RPN Baseline * (tested without lesions >= 48 mm)
    'rpn3d-focal_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d-lt48mm':
    _a3d_deeplesion((69.09, 76.75, 82.81, 87.29, 91.2, 93.84, 83.5, 0.735),
                    (91, 88, 89, 80, 86, 82, 81, 68, 82, 88, 84)),
    # Tables V and VI, 3D-AG * (tested without lesions >= 48 mm)
    'aggregated3d_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d-lt48mm':
    _a3d_deeplesion((74.68, 81.52, 85.45, 89.18, 92.01, 94.72, 86.26, 0.774),
                    (93, 89, 91, 84, 90, 86, 83, 70, 83, 90, 90)),
    # Tables V and VI, 3DCE, 27 slices [7], quoted (2D criterion, its own
    # paper's numbers; no FROC score)
    A3D_3DCE:
    _a3d_deeplesion((62.48, 73.37, 80.7, 85.65, 89.09, 91.06, 80.39, None),
                    (89, 88, 90, 74, 84, 84, 82, 75, 80, 87, 84)),
}

#: Table II's rows a-f (as the paper prints them) and their names
_T2_ROWS = {
    r: (f'{r}. DenseBlock + {anchor}', (f'row {r}', f'II {r}',
                                         f'Table II {r}') + extra)
    for r, anchor, extra in (
        ('a', 'anchor1', ('OHEM, single scale', )),
        ('b', 'anchor1', ('focal loss, single scale', )),
        ('c', 'anchor1', ('OHEM, multi-scale', )),
        ('d', 'anchor1', ('focal loss, multi-scale', )),
        ('e', 'anchor2', ('anchor2', )),
        ('f', 'anchor1†', ('anchor1†', 'RPN†')))}
#: Table III's rows (the keys of its ``PRINTED`` entries) as the paper
#: prints them (model, DA, Magnify, Joint / Alternating) and their names
_T3_ROWS = {
    'crop96': ('Crop 96, DA, Joint', ('Crop 96, DA, joint', 'crop 96 DA',
                                      'Crop 96, DA')),
    'crop96_magnify': ('Crop 96, DA, Magnify, Joint', (
        'Crop 96, DA, Magnify', 'crop 96 DA + Magnify',
        'crop 96, DA, Magnify, joint')),
    'crop96_alternating': ('Crop 96, DA, Magnify, Alternating', (
        'Alternating', 'alternating training')),
    'crop128': ('Crop 128, DA, Joint', ('3D-AG-LM', 'Crop 128, DA, joint',
                                        'crop 128 DA')),
    'crop128_magnify': ('Crop 128, DA, Magnify, Joint', (
        '3D-AG', 'Crop 128, DA, Magnify', 'crop 128 DA + Magnify')),
    'crop128abs_wo_da': ('Crop 128†, Joint', ('Crop 128†, joint',
                                              'without DA', 'w/o DA',
                                              'no DA')),
    'crop128abs': ('Crop 128†, DA, Joint', ('3D-AG-LM†', 'Crop 128†, DA',
                                            'crop 128† DA')),
    'crop128abs_magnify': ('Crop 128†, DA, Magnify, Joint', (
        '3D-AG†', 'Crop 128†, DA, Magnify', 'crop 128† DA + Magnify')),
    'merged_intersection': ('Merged (Intersection)', (
        'Merged (Intersection)', 'Intersection')),
    'merged_union': ('Merged (Union)', ('Merged (Union)', 'Union')),
}
_TII = ('luna16/cpm', )
_V = a3d_deeplesion_keys()[:8]
_VI = a3d_deeplesion_keys()[8:]
_DL = '_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d'


def _t3(row: str) -> ResultRow:
    return ResultRow('Table III', *_T3_ROWS[row], _TII)


def _t56(row: str, names: Tuple[str, ...]) -> Tuple[ResultRow, ...]:
    return (ResultRow('Table V', row, names, _V),
            ResultRow('Table VI', row, names, _VI))


_LT48 = ('without lesions >= 48 mm', '< 48 mm', 'lt48mm')
#: model -> where each of its numbers stands in the paper
RESULT_ROWS: Dict[str, Tuple[ResultRow, ...]] = {
    **{'rpn3d-' + stem: (ResultRow('Table II', *_T2_ROWS[r], _TII), )
       for r, stem in (('a', 'ohem-single-scale' + _L + '50e_luna16'),
                       ('b', 'focal-single-scale' + _L + '50e_luna16'),
                       ('c', 'ohem' + _L + '50e_luna16'),
                       ('e', 'focal_denseunet3d_anchor2_4xb2-50e_luna16'))},
    'rpn3d-focal' + _L + '50e_luna16': (
        ResultRow('Table II', *_T2_ROWS['d'], _TII), ),
    'rpn3d-focal-abs' + _L + '30e_luna16': (
        ResultRow('Table II', *_T2_ROWS['f'], _TII), ),
    'aggregated3d-wo-magnify' + _L + '50e_luna16-crop96': (_t3('crop96'), ),
    'aggregated3d' + _L + '50e_luna16-crop96': (_t3('crop96_magnify'), ),
    'aggregated3d-alternating' + _L + '50e_luna16': (
        _t3('crop96_alternating'), ),
    'aggregated3d-wo-magnify' + _L + '50e_luna16': (_t3('crop128'), ),
    'aggregated3d' + _L + '50e_luna16': (_t3('crop128_magnify'), ),
    'aggregated3d-wo-da-abs' + _L + '30e_luna16': (_t3('crop128abs_wo_da'), ),
    'aggregated3d-wo-magnify-abs' + _L + '30e_luna16': (
        _t3('crop128abs'),
        ResultRow('Table IV', '3D-AG (Ours)', ('3D-AG (Ours)', '3D-AG-LM†',
                                               'single model',
                                               'single-model'), _TII)),
    'aggregated3d-abs' + _L + '30e_luna16': (_t3('crop128abs_magnify'), ),
    'aggregated3d-merged-intersection': (_t3('merged_intersection'), ),
    'aggregated3d-merged-union': (_t3('merged_union'), ),
    A3D_RES18: (ResultRow('Table II', 'Res18 [10]', ('Res18', )),
                ResultRow('Table IV', 'Res18 [10]', ('Res18', ))),
    A3D_DUALPATH: (ResultRow('Table II', 'DualPath [10]', ('DualPath', )),
                   ResultRow('Table IV', 'DualPath [10]', ('DualPath', ))),
    A3D_RESBLOCK: (ResultRow('Table II', 'ResBlock [11]', ('ResBlock', )), ),
    A3D_RESBLOCK_ABS: (
        ResultRow('Table II', 'ResBlock† [11]', ('ResBlock†', )),
        ResultRow('Table IV', 'ResBlock† [11]', ('ResBlock†', ))),
    **{model + TNP_SUFFIX: (ResultRow('Fig. 4c', row, names), )
       for model, row, names in (
           ('rpn3d-focal-abs' + _L + '30e_luna16', 'Baseline RPN',
            ('Baseline RPN', 'RPN')),
           ('aggregated3d-merged-union', 'Merged (Union)',
            ('Merged (Union)', 'Union')),
           ('aggregated3d-abs' + _L + '30e_luna16', '3D-AG',
            ('3D-AG', '3D-AG†')),
           ('aggregated3d-wo-magnify-abs' + _L + '30e_luna16', '3D-AG-LM',
            ('3D-AG-LM', '3D-AG-LM†')),
           ('aggregated3d-merged-intersection', 'Merged (Intersection)',
            ('Merged (Intersection)', 'Intersection')))},
    'rpn3d-focal' + _DL: _t56('RPN Baseline', ('RPN Baseline', 'RPN')),
    'aggregated3d' + _DL: _t56('3D-AG', ('3D-AG', )),
    'rpn3d-focal' + _DL + '-lt48mm': _t56('RPN Baseline *',
                                          ('RPN Baseline *', ) + _LT48),
    'aggregated3d' + _DL + '-lt48mm': _t56('3D-AG *', ('3D-AG *', ) + _LT48),
    A3D_3DCE: _t56('3DCE, 27 slices [7]', ('3DCE', '3DCE, 27 slices')),
}

_WO_LM = ('without Local Magnification', 'w/o Local Magnification',
          'without Magnify', 'no Local Magnification', '3D-AG-LM',
          'wo-magnify')
_WITH_LM = ('with Local Magnification', 'Local Magnification', 'Magnify',
            'DA + Magnify')
_RPN = ('RPN', 'baseline RPN', 'RPN baseline')
_TABLE4_3DAG = ('3D-AG (Ours)', 'single model', 'single-model')
_A3D_TIME = 'inference time per pre-processed scan, 4 Tesla K80'

#: numbers the paper prints outside the compared metrics that the
#: documents quote: name -> where it is printed
PRINTED: Dict[str, Printed] = {
    'rpn_s_per_scan': Printed(
        3.0, 'Sec. IV-F', 'baseline RPN', _A3D_TIME + ' ("~3.0s")',
        _RPN, 's'),
    'wo_magnify_s_per_scan': Printed(
        4.2, 'Sec. IV-F', '3D Aggregated Faster R-CNN without Local '
        'Magnification', _A3D_TIME + ' ("~4.2s")', _WO_LM, 's'),
    'table4_s_per_scan': Printed(
        4.2, 'Table IV', '3D-AG (Ours)', 'Inference Time ("4.2s /Scan"; '
        "the row's FROC 0.939 is Table III's crop 128†, DA, no Magnify)",
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
    **{f'table2_sens_{row}': Printed(v, 'Table II', label, 'sensitivity',
                                     names)
       for row, (label, names), v in zip(
           ('a', 'b', 'c', 'd', 'e', 'f', 'res18', 'dualpath'),
           [_T2_ROWS[r] for r in 'abcdef'] + [
               ('Res18 [10]', ('Res18', )), ('DualPath [10]', ('DualPath', ))],
           (0.896, 0.941, 0.956, 0.982, 0.970, 0.977, 0.946, 0.958))},
    'resblock_abs_s_per_scan': Printed(
        15, 'Table IV', 'ResBlock† [11]', 'Inference Time ("15s /Scan"; '
        'Sec. IV-F: "~15s per pre-processed scan" on 4 Titan XPs)',
        ('ResBlock', '[11]', 'Xie'), 's'),
    # Table III, RPN / FPRN / Combined, FROC / sensitivity, per row
    **{f'table3_{row}_{part}_{m}': Printed(v, 'Table III', _T3_ROWS[row][0],
                                           f'{part} {m}', _T3_ROWS[row][1])
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
}

#: Tables V and VI (Sec. V-A: "we still can reduce unnecessary parts by
#: clipping black borders")
A3D_NO_CLIP = ('DeepLesion chunks not clipped to the body (Sec. V-A clips '
               'the black borders)')
#: model (config stem) -> how it differs from the paper's setting of its row
VARIANTS: Dict[str, Variant] = {
    stem: Variant(A3D_NO_CLIP) for stem in (
        'rpn3d-focal_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d',
        'aggregated3d_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d',
        'rpn3d-focal_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d-'
        'lt48mm',
        'aggregated3d_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d-'
        'lt48mm')}
