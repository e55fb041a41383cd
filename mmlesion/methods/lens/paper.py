# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS's published numbers (Yan et al., TMI 2020) that its tables are set
beside, the metric keys they are read from, the other numbers its
documents quote, its quoted row and its variant."""
from typing import Dict, Sequence, Tuple

from mmlesion.apps.reproduce.plan import MetricMap
from mmlesion.apps.reproduce.paper_tables import Gain, Printed, ResultRow
from mmlesion.apps.reproduce.variants import Variant

#: Table I's FP rates per sub-volume
LENS_RATES = (0.125, 0.25, 0.5, 1, 2, 4, 8)


def lens_map() -> MetricMap:
    """LENS 3D paper keys (percent) -> ``eval_lens_3d`` keys."""
    out = {f'froc3d/sens@{r:g}': (f'sens@{r:g}', 100.) for r in LENS_RATES}
    out['froc3d/mean@0.125-8'] = ('average', 100.)
    return out


def _lens(sens: Sequence[float], mean: float,
          **columns: float) -> Dict[str, float]:
    """A Table I row: sensitivity (%) at 1/8 .. 8 FPs per sub-volume, their
    mean and the row's columns of other tables (:func:`_lens_row`)."""
    out = {f'froc3d/sens@{r:g}': v for r, v in zip(LENS_RATES, sens)}
    return dict(out, **_lens_row(mean, **columns))


def _lens_row(mean: float, **columns: float) -> Dict[str, float]:
    """A row of Tables II-IV: its average sensitivity (%) and its other
    columns (``lens/<name>``: training-set counts, time, size)."""
    return dict({'froc3d/mean@0.125-8': mean},
                **{f'lens/{k}': v for k, v in columns.items()})


#: quoted row of Table IV: the proposed LENS with the domain attention
#: module of Wang et al. (CVPR 2019; the paper's [23])
LENS_DOMAIN_ADAPT = 'quoted: LENS + domain attention (Wang et al. 2019)'

#: the configs' shared part: DeepLesion alone, and the four datasets
_L9 = 'densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice'
_L4 = ('densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-'
       '9slice')
#: model -> metric -> the paper's number
PAPER_RESULTS: Dict[str, Dict[str, float]] = {
    # Table I, MULAN (baseline)
    'mulan_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice':
    _lens((11.2, 16.3, 24.3, 32.8, 41.6, 50.9, 60.1), 33.9),
    # Table I, row (a)
    'lens-afp_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice':
    _lens((15.8, 21.4, 27.9, 35.9, 43.4, 52.0, 60.9), 36.8,
          # Table III, No mining (trained on: 3D GT, 2D GT, 2D uncertain,
          # training slices, in thousands)
          lesions_3d_k=22.8, boxes_2d_k=22.8, uncertain_2d_k=0,
          slices_k=22.4,
          # Table IV, Single dataset (inference time and model size: x)
          infer_time_x=1, model_size_x=1),
    # Table I, row (b)
    'lens-afp-multi_' + _L4:
    _lens((14.3, 21.5, 28.2, 35.1, 44.4, 53.9, 63.4), 37.3),
    # Table I, row (c)
    'lens-afp-multi-fusion_' + _L4:
    _lens((15.9, 22.8, 30.1, 37.7, 46.7, 56.6, 66.1), 39.4),
    # Table I, row (d)
    'lens-afp-multi-fusion-mining_' + _L4:
    _lens((21.6, 29.9, 37.6, 46.7, 56.7, 65.8, 75.3), 47.6,
          # Table II, AFP, two stages (ms per slice)
          infer_ms=54,
          # Table IV, Proposed
          infer_time_x=1.8, model_size_x=1.1),
    # Table I, row (e) (row (d)'s detector + this FPR network, Eq. 2)
    'lens-fpr_resnet18-3d_1xb32-radam-6e_deeplesion':
    _lens((23.7, 31.6, 40.3, 50.0, 59.6, 69.5, 78.0), 50.4),
    # Table II, RPN, two stages
    'lens-rpn-multi-fusion-mining_' + _L4:
    {'froc3d/mean@0.125-8': 42.5, 'lens/infer_ms': 62},
    # Table II, CenterNet, two stages
    'lens-centernet-multi-fusion-mining_' + _L4:
    {'froc3d/mean@0.125-8': 45.3, 'lens/infer_ms': 59},
    # Table II, FCOS, one stage
    'lens-fcos-onestage-multi-fusion-mining_' + _L4:
    {'froc3d/mean@0.125-8': 41.7, 'lens/infer_ms': 29},
    # Table II, FCOS, two stages
    'lens-fcos-multi-fusion-mining_' + _L4:
    {'froc3d/mean@0.125-8': 45.7, 'lens/infer_ms': 54},
    # Table III, + Cross-slice
    'lens-afp-mining-propagation_' + _L9:
    _lens_row(37.7, lesions_3d_k=22.8, boxes_2d_k=186, uncertain_2d_k=0,
              slices_k=163),
    # Table III, + Intra-patient
    'lens-afp-mining-propagation-intrapatient_' + _L9:
    _lens_row(40.7, lesions_3d_k=34.3, boxes_2d_k=250, uncertain_2d_k=0,
              slices_k=192),
    # Table III, + Cross-dataset
    'lens-afp-mining-lesion-slices_' + _L9:
    _lens_row(44.6, lesions_3d_k=34.3, boxes_2d_k=250, uncertain_2d_k=117,
              slices_k=192),
    # Table III, + Unlabeled
    'lens-afp-mining_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice':
    _lens_row(46.8, lesions_3d_k=34.3, boxes_2d_k=250, uncertain_2d_k=442,
              slices_k=646),
    # Table IV, Data pooling
    'lens-afp-pooled_' + _L4:
    _lens_row(39.4, infer_time_x=1, model_size_x=1),
    # Table IV, Positive data pooling
    'lens-afp-pooled-positive_' + _L4:
    _lens_row(32.8, infer_time_x=1, model_size_x=1),
    # Table IV, Separate models
    'lens-afp-separate_' + _L4:
    _lens_row(39.6, infer_time_x=4, model_size_x=4),
    # Table IV, Ignored as GT
    'lens-afp-multi-fusion-mining-uncertain-gt_' + _L4:
    _lens_row(44.9, infer_time_x=1.8, model_size_x=1.1),
    # Table IV, Proposed + domain adapt. [23], quoted (another paper's
    # module, not in mmlesion)
    LENS_DOMAIN_ADAPT: _lens_row(47.1, infer_time_x=1.9, model_size_x=1.1),
}

_MEAN = 'froc3d/mean@0.125-8'
#: Table I's columns; Table II's, III's (the counts are placed by
#: :data:`RESULT_COLUMNS`) and IV's
_I = tuple(lens_map())
_II, _III = (_MEAN, 'lens/infer_ms'), (_MEAN, )
_IV = (_MEAN, 'lens/infer_time_x', 'lens/model_size_x')


def _row(where: str, row: str, *names: str) -> Tuple[ResultRow, ...]:
    keys = {'Table I': _I, 'Table II': _II, 'Table III': _III,
            'Table IV': _IV}[where]
    return (ResultRow(where, row, (row, ) + names, keys), )


#: model -> where each of its numbers stands in the paper (Table I's body
#: is not in the text of our copy; its rows as the text names them)
RESULT_ROWS: Dict[str, Tuple[ResultRow, ...]] = {
    'mulan_' + _L9: _row('Table I', 'MULAN', 'baseline'),
    'lens-afp_' + _L9: (
        _row('Table I', '(a)', 'row (a)', 'AFP') +
        _row('Table III', 'No mining', 'no-mining') +
        _row('Table IV', 'Single dataset', 'single-dataset')),
    'lens-afp-multi_' + _L4: _row('Table I', '(b)', 'row (b)',
                                  'multi-dataset'),
    'lens-afp-multi-fusion_' + _L4: _row('Table I', '(c)', 'row (c)',
                                         'fusion'),
    'lens-afp-multi-fusion-mining_' + _L4: (
        _row('Table I', '(d)', 'row (d)', 'LENS', 'mining') +
        _row('Table II', 'AFP', 'AFP, two stages') +
        _row('Table IV', 'Proposed', 'proposed framework', 'LENS')),
    'lens-fpr_resnet18-3d_1xb32-radam-6e_deeplesion': _row(
        'Table I', '(e)', 'row (e)', 'FPR', '3D FPR'),
    'lens-rpn-multi-fusion-mining_' + _L4: _row('Table II', 'RPN',
                                                'RPN, two stages'),
    'lens-centernet-multi-fusion-mining_' + _L4: _row('Table II',
                                                      'CenterNet'),
    'lens-fcos-onestage-multi-fusion-mining_' + _L4: _row(
        'Table II', 'FCOS, one stage', 'FCOS one stage', 'one-stage FCOS',
        'one stage', 'one-stage'),
    'lens-fcos-multi-fusion-mining_' + _L4: _row(
        'Table II', 'FCOS, two stages', 'FCOS', 'FCOS two stages'),
    'lens-afp-mining-propagation_' + _L9: _row(
        'Table III', '+ Cross-slice', 'Cross-slice',
        'cross-slice propagation'),
    'lens-afp-mining-propagation-intrapatient_' + _L9: _row(
        'Table III', '+ Intra-patient', 'Intra-patient',
        'intra-patient matching'),
    'lens-afp-mining-lesion-slices_' + _L9: _row(
        'Table III', '+ Cross-dataset', 'Cross-dataset',
        'cross-dataset mining'),
    'lens-afp-mining_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice':
    _row('Table III', '+ Unlabeled', 'Unlabeled', 'unlabeled slices'),
    'lens-afp-pooled_' + _L4: _row('Table IV', 'Data pooling'),
    'lens-afp-pooled-positive_' + _L4: _row('Table IV',
                                            'Positive data pooling'),
    'lens-afp-separate_' + _L4: _row('Table IV', 'Separate models'),
    'lens-afp-multi-fusion-mining-uncertain-gt_' + _L4: _row(
        'Table IV', 'Ignored as GT', 'uncertain as GT',
        'uncertain lesions as GT'),
    LENS_DOMAIN_ADAPT: _row('Table IV', 'Proposed + domain adapt.',
                            'domain adapt', 'domain attention',
                            'domain adaptation'),
}

#: numbers the paper prints outside the compared metrics that the
#: documents quote: name -> where it is printed
PRINTED: Dict[str, Printed] = {
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
}

#: the columns of :data:`PAPER_RESULTS` whose numbers the
#: documents quote in prose, placed like :data:`PRINTED`: metric key ->
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

_LA, _LM = 'lens-afp_' + _L9, 'lens-afp-multi_' + _L4
_LF = 'lens-afp-multi-fusion_' + _L4
_LD = 'lens-afp-multi-fusion-mining_' + _L4
_LENS = 'froc3d/mean@0.125-8'

#: differences of two paper numbers that the documents quote as a gain:
#: Table I's steps, average sensitivity: (a) over the baseline, (b) over
#: (a), (c) over (b), (d) over (c), (e) over (d); Table III's
#: cross-dataset step
GAINS: Dict[str, Gain] = {
    name: Gain(a, b, _LENS, where, names)
    for name, a, b, where, names in (
        ('afp_over_mulan', _LA, 'mulan_' + _L9, 'Table I',
         ('AFP', 'baseline -> a')),
        ('multi_over_afp', _LM, _LA, 'Table I',
         ('multi-dataset', 'multiple datasets', 'a -> b')),
        ('fusion_over_multi', _LF, _LM, 'Table I',
         ('fusion', 'proposal fusion', 'b -> c')),
        ('mining_over_fusion', _LD, _LF, 'Table I', ('mining', 'c -> d')),
        ('fpr_over_mining', 'lens-fpr_resnet18-3d_1xb32-radam-6e_deeplesion',
         _LD, 'Table I', ('FPR', '3D FPR', 'd -> e')),
        ('cross_dataset_over_intra_patient',
         'lens-afp-mining-lesion-slices_' + _L9,
         'lens-afp-mining-propagation-intrapatient_' + _L9, 'Table III',
         ('cross-dataset', 'cross-dataset mining')))
}

#: Table I's baseline as built here (configs/lens/README.md, "MULAN
#: baseline")
MULAN_DETECTOR_ONLY = (
    "MULAN's detector only (no mask, tag or score-refine branch), trained "
    "with the LENS rows' data, optimiser and schedule; the paper's row is "
    'the full MULAN')
#: model (config stem) -> how it differs from the paper's setting of its row
VARIANTS: Dict[str, Variant] = {
    'mulan_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice': Variant(
        MULAN_DETECTOR_ONLY),
}
