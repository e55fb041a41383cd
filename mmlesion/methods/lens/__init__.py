# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS (Yan et al., TMI 2020): its workflow in one package, registered
for the shared engines: tables, paper numbers, step times, training input,
config keys and whole-scan steps (this file); the experts a model fuses
(``experts.py``), the 3D evaluation (``eval_3d.py``), the missing-annotation
mining (``mining/``), the FPR network's proposals (``fpr_proposals.py``)
and its re-scoring (``fpr_rescore.py``). Models:
``mmlesion/models`` (``LENS``, ``AFPHead``, ``MULANDenseNet``,
``LENSFPR``); datasets: ``mmlesion/datasets/lens/``; configs:
``configs/lens/``."""
from mmlesion.registry import METHODS
from mmlesion.apps.reproduce.table_index import table_specs
from mmlesion.utils.configs.whole_config import TWO_STAGE_KEYS
from mmlesion.utils.method_spec import MethodSpec
from .paper import (GAINS, LENS_DOMAIN_ADAPT, PAPER_RESULTS, PRINTED,
                    RESULT_COLUMNS, RESULT_ROWS, VARIANTS)
from .step_time import fpr_patches, patch_batch, patch_input
from .tables import LENS_BUILDERS, lens_data

#: each table's title and rows, in the paper's order (read with ast by
#: ``tools/reproduce.py --help``: keep it a plain literal)
TABLE_INDEX = {
    'lens/table1': {
        'title': ('LENS Table I: DeepLesion manual 1K 3D test set, '
                  'sensitivity at 1/8..8 FPs per sub-volume'),
        'rows': ['baseline', 'a', 'b', 'c', 'd', 'e'],
    },
    'lens/table2': {
        'title': ('LENS Table II: proposal networks in row (d) (RPN, '
                  'CenterNet, FCOS in two stages and one, AFP), average '
                  'sensitivity on the manual 1K 3D test set; inference ms '
                  'per slice quoted'),
        'rows': ['rpn', 'centernet', 'fcos_one_stage', 'fcos', 'afp'],
    },
    'lens/table3': {
        'title': ('LENS Table III: the mining strategies on DeepLesion '
                  'alone, average sensitivity (manual 1K 3D test set) and '
                  'what each trains on (3D and 2D GT, 2D uncertain, slices; '
                  'thousands)'),
        'rows': ['no_mining', 'cross_slice', 'intra_patient',
                 'cross_dataset', 'unlabeled'],
    },
    'lens/table4': {
        'title': ('LENS Table IV: ways to combine the datasets, average '
                  'sensitivity (manual 1K 3D test set); time and size '
                  'quoted; domain adaptation quoted, not run'),
        'rows': ['single', 'pooling', 'positive_pooling', 'separate',
                 'proposed', 'uncertain_as_gt', 'domain_adapt'],
    },
}

#: the keys ``LENS.fuse_instances`` reads
_FUSION = frozenset({'nms', 'max_per_img'})
#: benchmark_lens.py: 28.7 ms per 9-slice image with 4 experts, inference;
#: training taken as 3.03x, the ratio benchmark_elixirnet.py measured for
#: Faster R-CNN (50.9 / 16.8)
_DETECTOR_STEP = 0.0287 * 3.03


def _data_folders(table: str, ctx) -> list:
    """DeepLesion, the other releases beside it and their exports."""
    return [v for k, v in lens_data(ctx).items() if k != 'ann_3d']


def _whole_scan_steps(options) -> tuple:
    """``--experts``: the experts fused (:class:`.experts.LensExperts`);
    ``--fpr-config`` / ``--fpr-checkpoint``: Eq. 2's re-scoring by the FPR
    network (:class:`.fpr_rescore.LensFPRRescorer`)."""
    from .experts import LensExperts
    from .fpr_rescore import LensFPRRescorer
    experts = getattr(options, 'experts', None)
    return ((() if experts is None else (LensExperts(experts), )),
            LensFPRRescorer.from_options(
                getattr(options, 'fpr_config', None),
                getattr(options, 'fpr_checkpoint', None)))


@METHODS.register_module(name='lens')
def lens_method() -> MethodSpec:
    """LENS's :class:`~mmlesion.utils.method_spec.MethodSpec`."""
    return MethodSpec(
        name='lens',
        tables=table_specs(__file__, LENS_BUILDERS, TABLE_INDEX),
        paper_results=PAPER_RESULTS,
        config_prefixes=('lens', 'mulan'),
        quoted_models=(LENS_DOMAIN_ADAPT, ),
        variants=VARIANTS,
        printed=PRINTED,
        gains=GAINS,
        result_columns=RESULT_COLUMNS,
        result_rows=RESULT_ROWS,
        # the 2.5D detectors (MULAN baseline too); the 3D FPR network per
        # 8 x 64 x 64 patch: 0.8 ms, timed by ``tools/reproduce.py
        # lens/table1 --dry-run --time-iters 5`` on one H100 80GB (batch 32
        # patches, fp32)
        step_times={'lens': _DETECTOR_STEP, 'mulan': _DETECTOR_STEP,
                    'lens-fpr': 0.0008},
        training_items={'deeplesion-fpr': fpr_patches},
        training_inputs={'LENSFPR': patch_input},
        synthetic_batches={'patch': patch_batch},
        config_keys={
            'LENS': {
                **TWO_STAGE_KEYS,
                'train_cfg': TWO_STAGE_KEYS['train_cfg'] |
                {'proposal_fusion'},
                'train_cfg.proposal_fusion': _FUSION,
                'test_cfg': TWO_STAGE_KEYS['test_cfg'] |
                {'proposal_fusion', 'expert_fusion'},
                'test_cfg.proposal_fusion': _FUSION,
                'test_cfg.expert_fusion': _FUSION | {'experts'},
            }
        },
        data_folders=_data_folders,
        whole_scan_steps=_whole_scan_steps)
