# Copyright (c) mmlesion contributors. All rights reserved.
"""The papers' published numbers that a reproduced table is set beside.

One entry per model (its config's stem, or a name of
:data:`MERGED_MODELS`; ``<stem>@iobb``: the same model under ElixirNet's
IoBB criterion, Table 2; ``<model>@tnp``: its TNP, 3D-AG Fig. 4c), in the
keys of the table's metric map (``execute.froc_map`` / ``luna16_map`` /
``lens_map``: sensitivities in percent, CPM as a fraction; the 3D
Aggregated Faster R-CNN's DeepLesion tables: :func:`a3d_deeplesion_keys`;
LENS's training-set counts and speed columns: ``tables_lens.lens_row_map``),
each with the paper's table and row.
The same numbers are the "paper" column of the method's README
(``configs/<method>/README.md``); a test checks that every number here is
printed there. The metafiles carry no results: OpenMMLab's ``Results`` are
for models with weights.

A row of another paper's method that a table prints beside its own rows is
*quoted*: its numbers are here under a name of :data:`QUOTED_MODELS` (no
config; the table shows them and never runs the row).

A model that differs on purpose from the paper's setting of its row is a
*variant* (:mod:`.variants`).

The one table of paper numbers for the documents too: a number a document
quotes from a paper is one of these, or one of the other printed numbers and
gains of :mod:`.paper_text`.
"""
from typing import Dict, Optional, Sequence, Tuple

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


_E7 = (0.5, 1, 2, 3, 4, 8, 16)
_R6 = (0.5, 1, 2, 4, 8, 16)


def _froc(sens: Sequence[float], map_: Optional[float] = None,
          rates: Sequence[float] = _E7) -> Dict[str, float]:
    """A DeepLesion 2D row: sensitivity (%) at ``rates`` FPs per image
    (ElixirNet's seven, RetinaNet's six), and its COCO mAP when printed."""
    out = {f'sens@{r:g}': v for r, v in zip(rates, sens)}
    return out if map_ is None else dict(out, bbox_mAP=map_)


def _lens(sens: Sequence[float], mean: float) -> Dict[str, float]:
    """A LENS Table I row: sensitivity (%) at 1/8 .. 8 FPs per sub-volume
    and their mean."""
    out = {f'froc3d/sens@{r:g}': v
           for r, v in zip((0.125, 0.25, 0.5, 1, 2, 4, 8), sens)}
    return dict(out, **{'froc3d/mean@0.125-8': mean})


def _lens_row(mean: float, **columns: float) -> Dict[str, float]:
    """A LENS row of Tables II-IV: its average sensitivity (%) and its
    other columns (``lens/<name>``: training-set counts, time, size)."""
    return dict({'froc3d/mean@0.125-8': mean},
                **{f'lens/{k}': v for k, v in columns.items()})


#: quoted row of 3D-AG Tables V / VI: 3DCE, 27 slices (Yan et al., MICCAI
#: 2018; the paper's [7])
A3D_3DCE = 'quoted: 3DCE, 27 slices (Yan et al. 2018)'
#: quoted row of LENS Table IV: the proposed LENS with the domain
#: attention module of Wang et al. (CVPR 2019; the paper's [23])
LENS_DOMAIN_ADAPT = 'quoted: LENS + domain attention (Wang et al. 2019)'
#: quoted rows of 3D-AG Tables II and IV: Res18 and DualPath of DeepLung
#: (Zhu et al. 2018, the paper's [10]), ResBlock and ResBlock† (Xie 2018,
#: the paper's [11]; † with Anchor Based Sampling)
A3D_RES18 = 'quoted: Res18 (Zhu et al. 2018)'
A3D_DUALPATH = 'quoted: DualPath (Zhu et al. 2018)'
A3D_RESBLOCK = 'quoted: ResBlock (Xie 2018)'
A3D_RESBLOCK_ABS = 'quoted: ResBlock† (Xie 2018)'
#: quoted rows (another paper's method, never run) -> the method whose
#: README prints them
QUOTED_MODELS: Dict[str, str] = {
    A3D_3DCE: 'aggregated3d', LENS_DOMAIN_ADAPT: 'lens',
    **dict.fromkeys((A3D_RES18, A3D_DUALPATH, A3D_RESBLOCK,
                     A3D_RESBLOCK_ABS), 'aggregated3d')}
#: 3D-AG Table III's merged rows: the candidates of 3D-AG-LM† and 3D-AG†
#: pooled (``merge_luna16_candidates.py``), a model without a config of
#: its own -> the method whose README prints them
MERGED_MODELS: Dict[str, str] = {
    f'aggregated3d-merged-{mode}': 'aggregated3d'
    for mode in ('intersection', 'union')}
#: the entry of a model's TNP (3D-AG Fig. 4c) in :data:`PAPER_RESULTS`
TNP_SUFFIX = '@tnp'


#: model -> metric -> the paper's number.
PAPER_RESULTS: Dict[str, Dict[str, float]] = {
    # Table 1, FRCNN, 3 slices (ElixirNet's numbers minus the gains
    # printed beside them)
    'faster-rcnn_r50_c4_4xb2-1x_deeplesion-3slice':
    _froc((55.94, 66.25, 74.69, 79.17, 79.87, 79.84, 79.84), 27.9),
    # Table 1, ElixirNet, 3 slices
    'elixirnet-fig3geno_r50_c4_4xb2-1x_deeplesion-3slice':
    _froc((60.43, 69.38, 77.2, 80.52, 82.72, 83.74, 83.74), 30.8),
    # Tables 1 and 5, FPN, 3 slices (sens@3: Table 5; the other rates:
    # Table 1, ElixirNet w FPN minus the gains printed beside it)
    'faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice':
    _froc((60.57, 70.34, 77.65, 81.51, 83.55, 85.67, 85.67), 31.5),
    # Tables 1 and 5, ElixirNet w FPN, 3 slices
    'elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice':
    _froc((66.39, 75.41, 82.05, 86.63, 87.75, 88.36, 88.36), 35.2),
    # Table 1, Deformv2, 3 slices (ElixirNet w Deformv2 minus the gains)
    'faster-rcnn_r50-dcnv2_fpn_4xb2-1x_deeplesion-3slice':
    _froc((63.16, 72.35, 81.04, 84.47, 86.52, 87.76, 87.76), 34.3),
    # Table 1, ElixirNet w Deformv2, 3 slices
    'elixirnet-fig3geno_r50-dcnv2_fpn_4xb2-1x_deeplesion-3slice':
    _froc((65.64, 75.84, 83.7, 86.92, 88.91, 91.37, 91.37), 36.3),
    # Table 2 (IoBB), FRCNN (ElixirNet's row minus the gains printed
    # beside it, as Table 1's FRCNN row)
    'faster-rcnn_r50_c4_4xb2-1x_deeplesion-3slice@iobb':
    _froc((57.59, 68.46, 77.36, 81.96, 82.43, 82.43, 82.43)),
    # Table 2 (IoBB), ElixirNet (C4)
    'elixirnet-fig3geno_r50_c4_4xb2-1x_deeplesion-3slice@iobb':
    _froc((63.36, 73.21, 81.38, 85.06, 86.53, 87.5, 87.5)),
    # Table 2 (IoBB), FPN (ElixirNet w FPN minus the gains)
    'faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice@iobb':
    _froc((62.17, 72.35, 80.29, 83.82, 86.03, 87.68, 87.68)),
    # Table 2 (IoBB), ElixirNet w FPN
    'elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice@iobb':
    _froc((68.67, 77.93, 84.83, 88.62, 90.59, 91.77, 91.77)),
    # Table 2 (IoBB), Deformv2 (ElixirNet w Deformv2 minus the gains)
    'faster-rcnn_r50-dcnv2_fpn_4xb2-1x_deeplesion-3slice@iobb':
    _froc((65.09, 74.49, 83.34, 86.84, 88.86, 89.71, 89.71)),
    # Table 2 (IoBB), ElixirNet w Deformv2
    'elixirnet-fig3geno_r50-dcnv2_fpn_4xb2-1x_deeplesion-3slice@iobb':
    _froc((67.33, 77.89, 86.0, 90.13, 91.66, 93.55, 93.55)),
    # Table 5, +TRPN (Eq. (1) alone: the paper's reading; the TRPN with the
    # auxiliary location loss is a variant compared with the same numbers)
    'elixirnet-trpn-noaux_r50_fpn_4xb2-1x_deeplesion-3slice':
    {'sens@3': 83.61, 'bbox_mAP': 33.9},
    # Table 5, +ALB (Table 6, ElixirNet)
    'elixirnet-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice':
    {'sens@3': 83.88, 'bbox_mAP': 34.1},
    # Table 5, +ALB +RTM
    'elixirnet-alb-rtm-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice':
    {'sens@3': 84.19, 'bbox_mAP': 34.0},
    # Table 5, +TRPN +ALB
    'elixirnet-trpn-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice':
    {'sens@3': 84.72, 'bbox_mAP': 34.8},
    # Table 5, 9 slices (our reading, +TRPN +ALB: its 85.43 lies between
    # 84.72 and 86.63, "slightly higher than the 3 slices", its mAP 34.4
    # below both; the check marks are lost: variants.READ_ROWS)
    'elixirnet-trpn-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-9slice':
    {'sens@3': 85.43, 'bbox_mAP': 34.4},
    # Table 6, ALB w/o our search space (the search; writes a genotype)
    'elixirnet-alb-search-dartsspace_r50_fpn_4xb4-15e_deeplesion-3slice':
    {'sens@3': 81.06, 'bbox_mAP': 32.1},
    # Table 6, random ALB (the search; writes a genotype)
    'elixirnet-alb-search-random_r50_fpn_4xb4-15e_deeplesion-3slice':
    {'sens@3': 81.84, 'bbox_mAP': 32.1},
    # Table 5 text, FPN with a focal-loss RPN (TRPN "outperforms focal loss")
    'elixirnet-rpnfocal_r50_fpn_4xb2-1x_deeplesion-3slice': {'sens@3': 82.66},
    # Table 3, FPN, KiTS19, 3 slices
    'faster-rcnn_r50_fpn_4xb2-1x_kits19-3slice': {'bbox_mAP': 21.1},
    # Table 3, ElixirNet w FPN, KiTS19, 3 slices
    'elixirnet-fig3geno_r50_fpn_4xb2-1x_kits19-3slice': {'bbox_mAP': 29.6},
    # Table 3, Deformv2, KiTS19, 3 slices
    'faster-rcnn_r50-dcnv2_fpn_4xb2-1x_kits19-3slice': {'bbox_mAP': 32.9},
    # Table 3, ElixirNet w Deformv2, KiTS19, 3 slices
    'elixirnet-fig3geno_r50-dcnv2_fpn_4xb2-1x_kits19-3slice':
    {'bbox_mAP': 33.6},
    # Table 1, original RetinaNet
    'retinanet_vgg19_fpn_1xb4-adam-plateau-50e_deeplesion':
    _froc((45.8, 54.17, 62.5, 69.8, 75.34, 79.48), rates=_R6),
    # Table 1, + anchor optimization
    'retinanet-optanchors_vgg19_fpn_1xb4-adam-plateau-50e_deeplesion':
    _froc((64.82, 74.98, 82.29, 87.87, 92.2, 94.9), rates=_R6),
    # Table 1, + dense supervision
    'improved-retinanet_vgg19_densefpn_1xb4-adam-plateau-50e_deeplesion':
    _froc((70.24, 78.28, 85.1, 90.39, 93.81, 96.01), rates=_R6),
    # Table 1, + attention gate
    'improved-retinanet_vgg19_densefpn-ag_1xb4-adam-plateau-50e_deeplesion':
    _froc((72.15, 80.07, 86.4, 90.77, 94.09, 96.32), rates=_R6),
    # Table II, row a (DenseBlock + anchor1, OHEM, single scale)
    'rpn3d-ohem-single-scale_denseunet3d_anchor1_4xb2-50e_luna16':
    {'luna16/cpm': 0.839},
    # Table II, row b (DenseBlock + anchor1, focal loss, single scale)
    'rpn3d-focal-single-scale_denseunet3d_anchor1_4xb2-50e_luna16':
    {'luna16/cpm': 0.868},
    # Table II, row c (DenseBlock + anchor1, OHEM, multi-scale)
    'rpn3d-ohem_denseunet3d_anchor1_4xb2-50e_luna16': {'luna16/cpm': 0.898},
    # Table II, row d (DenseBlock + anchor1, focal loss, multi-scale)
    'rpn3d-focal_denseunet3d_anchor1_4xb2-50e_luna16': {'luna16/cpm': 0.91},
    # Table II, row e (DenseBlock + anchor2, focal loss, multi-scale)
    'rpn3d-focal_denseunet3d_anchor2_4xb2-50e_luna16': {'luna16/cpm': 0.899},
    # Table II, row f (DenseBlock + anchor1†, focal loss, multi-scale)
    'rpn3d-focal-abs_denseunet3d_anchor1_4xb2-30e_luna16':
    {'luna16/cpm': 0.917},
    # Table III, Crop 96, DA, Joint (Combined)
    'aggregated3d-wo-magnify_denseunet3d_anchor1_4xb2-50e_luna16-crop96':
    {'luna16/cpm': 0.917},
    # Table III, Crop 96, DA, Magnify, Joint (Combined)
    'aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16-crop96':
    {'luna16/cpm': 0.919},
    # Table III, Crop 96, DA, Magnify, Alternating (Combined)
    'aggregated3d-alternating_denseunet3d_anchor1_4xb2-50e_luna16':
    {'luna16/cpm': 0.912},
    # Table III, Crop 128, DA, Joint (3D-AG-LM, Combined)
    'aggregated3d-wo-magnify_denseunet3d_anchor1_4xb2-50e_luna16':
    {'luna16/cpm': 0.926},
    # Table III, Crop 128, DA, Magnify, Joint (3D-AG, Combined)
    'aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16': {'luna16/cpm': 0.93},
    # Table III, Crop 128†, Joint (no DA, no Magnify, Combined)
    'aggregated3d-wo-da-abs_denseunet3d_anchor1_4xb2-30e_luna16':
    {'luna16/cpm': 0.926},
    # Table III, Crop 128†, DA, Joint (3D-AG-LM†, Combined)
    'aggregated3d-wo-magnify-abs_denseunet3d_anchor1_4xb2-30e_luna16':
    {'luna16/cpm': 0.939},
    # Table III, Crop 128†, DA, Magnify, Joint (3D-AG†, Combined)
    'aggregated3d-abs_denseunet3d_anchor1_4xb2-30e_luna16':
    {'luna16/cpm': 0.935},
    # Table III, Merged (Intersection) of 3D-AG-LM† and 3D-AG† (Combined)
    'aggregated3d-merged-intersection': {'luna16/cpm': 0.943},
    # Table III, Merged (Union) of the same two (Combined)
    'aggregated3d-merged-union': {'luna16/cpm': 0.942},
    # Tables II and IV, quoted (FROC score; Table IV: ResBlock† only)
    A3D_RES18: {'luna16/cpm': 0.834},
    A3D_DUALPATH: {'luna16/cpm': 0.842},
    A3D_RESBLOCK: {'luna16/cpm': 0.92},
    A3D_RESBLOCK_ABS: {'luna16/cpm': 0.935},
    # Fig. 4c, TNP (true negative patients at 0.95 sensitivity): Baseline
    # RPN, 3D-AG, 3D-AG-LM and the merged rows, read as the ABS (†) models
    # the merged rows pool (and Table II row f, their RPN)
    **{model + TNP_SUFFIX: {'luna16/tnp': tnp} for model, tnp in (
        ('rpn3d-focal-abs_denseunet3d_anchor1_4xb2-30e_luna16', 0.38),
        ('aggregated3d-merged-union', 0.714),
        ('aggregated3d-abs_denseunet3d_anchor1_4xb2-30e_luna16', 0.721),
        ('aggregated3d-wo-magnify-abs_denseunet3d_anchor1_4xb2-30e_luna16',
         0.725),
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
    # Table I, MULAN (baseline)
    'mulan_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice':
    _lens((11.2, 16.3, 24.3, 32.8, 41.6, 50.9, 60.1), 33.9),
    # Table I, row (a)
    'lens-afp_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice': {
        'froc3d/sens@0.125': 15.8,
        'froc3d/sens@0.25': 21.4,
        'froc3d/sens@0.5': 27.9,
        'froc3d/sens@1': 35.9,
        'froc3d/sens@2': 43.4,
        'froc3d/sens@4': 52.0,
        'froc3d/sens@8': 60.9,
        'froc3d/mean@0.125-8': 36.8,
        # Table III, No mining (trained on: 3D GT, 2D GT, 2D uncertain,
        # training slices, in thousands)
        'lens/lesions_3d_k': 22.8,
        'lens/boxes_2d_k': 22.8,
        'lens/uncertain_2d_k': 0,
        'lens/slices_k': 22.4,
        # Table IV, Single dataset (inference time and model size: x)
        'lens/infer_time_x': 1,
        'lens/model_size_x': 1
    },
    # Table I, row (b)
    'lens-afp-multi_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice':
    _lens((14.3, 21.5, 28.2, 35.1, 44.4, 53.9, 63.4), 37.3),
    # Table I, row (c)
    'lens-afp-multi-fusion_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice':
    _lens((15.9, 22.8, 30.1, 37.7, 46.7, 56.6, 66.1), 39.4),
    # Table I, row (d)
    'lens-afp-multi-fusion-mining_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice':
    {
        'froc3d/sens@0.125': 21.6,
        'froc3d/sens@0.25': 29.9,
        'froc3d/sens@0.5': 37.6,
        'froc3d/sens@1': 46.7,
        'froc3d/sens@2': 56.7,
        'froc3d/sens@4': 65.8,
        'froc3d/sens@8': 75.3,
        'froc3d/mean@0.125-8': 47.6,
        # Table II, AFP, two stages (ms per slice)
        'lens/infer_ms': 54,
        # Table IV, Proposed
        'lens/infer_time_x': 1.8,
        'lens/model_size_x': 1.1
    },
    # Table I, row (e) (row (d)'s detector + this FPR network, Eq. 2)
    'lens-fpr_resnet18-3d_1xb32-radam-6e_deeplesion':
    _lens((23.7, 31.6, 40.3, 50.0, 59.6, 69.5, 78.0), 50.4),
    # Table II, RPN, two stages
    'lens-rpn-multi-fusion-mining_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice':
    {'froc3d/mean@0.125-8': 42.5, 'lens/infer_ms': 62},
    # Table II, CenterNet, two stages
    'lens-centernet-multi-fusion-mining_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice':
    {'froc3d/mean@0.125-8': 45.3, 'lens/infer_ms': 59},
    # Table II, FCOS, one stage
    'lens-fcos-onestage-multi-fusion-mining_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice':
    {'froc3d/mean@0.125-8': 41.7, 'lens/infer_ms': 29},
    # Table II, FCOS, two stages
    'lens-fcos-multi-fusion-mining_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice':
    {'froc3d/mean@0.125-8': 45.7, 'lens/infer_ms': 54},
    # Table III, + Cross-slice
    'lens-afp-mining-propagation_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice':
    _lens_row(37.7, lesions_3d_k=22.8, boxes_2d_k=186, uncertain_2d_k=0,
              slices_k=163),
    # Table III, + Intra-patient
    'lens-afp-mining-propagation-intrapatient_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice':
    _lens_row(40.7, lesions_3d_k=34.3, boxes_2d_k=250, uncertain_2d_k=0,
              slices_k=192),
    # Table III, + Cross-dataset
    'lens-afp-mining-lesion-slices_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice':
    _lens_row(44.6, lesions_3d_k=34.3, boxes_2d_k=250, uncertain_2d_k=117,
              slices_k=192),
    # Table III, + Unlabeled
    'lens-afp-mining_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice':
    _lens_row(46.8, lesions_3d_k=34.3, boxes_2d_k=250, uncertain_2d_k=442,
              slices_k=646),
    # Table IV, Data pooling
    'lens-afp-pooled_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice':
    _lens_row(39.4, infer_time_x=1, model_size_x=1),
    # Table IV, Positive data pooling
    'lens-afp-pooled-positive_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice':
    _lens_row(32.8, infer_time_x=1, model_size_x=1),
    # Table IV, Separate models
    'lens-afp-separate_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice':
    _lens_row(39.6, infer_time_x=4, model_size_x=4),
    # Table IV, Ignored as GT
    'lens-afp-multi-fusion-mining-uncertain-gt_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice':
    _lens_row(44.9, infer_time_x=1.8, model_size_x=1.1),
    # Table IV, Proposed + domain adapt. [23], quoted (another paper's
    # module, not in mmlesion)
    LENS_DOMAIN_ADAPT: _lens_row(47.1, infer_time_x=1.9, model_size_x=1.1),
}
