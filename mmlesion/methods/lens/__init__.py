# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS (Yan et al., TMI 2020): the config keys its detector reads
(the whole-config check) and its whole-scan steps with their options
(``flags.json``, ``flags.py``), registered here; its tables, paper numbers, step times and
training input for the paper harness (``tables.py``, ``paper.py``,
``step_time.py``); the experts a model fuses (``experts.py``), the 3D
evaluation (``eval_3d.py``), the missing-annotation mining (``mining/``),
the FPR network's proposals (``fpr_proposals.py``) and its re-scoring
(``fpr_rescore.py``). Its components live here too and register when it
is imported (its configs' ``custom_imports``): ``models/`` (``LENS``,
``AFPHead``, ``MULANDenseNet``, ``LENSFPR``...) and ``datasets/``;
configs: ``configs/lens/``."""
from mmlesion.apis.whole_scan.method_steps import (WHOLE_SCAN_STEPS, Steps,
                                                   WholeScanMethod)
from mmlesion.utils.configs.whole_config import (CONFIG_KEYS, TWO_STAGE_KEYS,
                                                 ConfigKeys)
from . import datasets, models  # noqa: F401  (registers them)
from .flags import LensScanSettings, add_whole_scan_arguments

#: its part of the paper harness, imported by the harness only
PAPER_TABLES_MODULE = 'mmlesion.methods.lens.tables'

#: the keys ``LENS.fuse_instances`` reads
_FUSION = frozenset({'nms', 'max_per_img'})

CONFIG_KEYS.register(ConfigKeys(
    name='lens',
    keys={
        'LENS': {
            **TWO_STAGE_KEYS,
            'train_cfg': TWO_STAGE_KEYS['train_cfg'] | {'proposal_fusion'},
            'train_cfg.proposal_fusion': _FUSION,
            'test_cfg': TWO_STAGE_KEYS['test_cfg'] |
            {'proposal_fusion', 'expert_fusion'},
            'test_cfg.proposal_fusion': _FUSION,
            'test_cfg.expert_fusion': _FUSION | {'experts'},
        }
    }))


def _whole_scan_steps(settings: LensScanSettings) -> Steps:
    """``--experts``: the experts fused (:class:`.experts.LensExperts`);
    ``--fpr-config`` / ``--fpr-checkpoint``: Eq. 2's re-scoring by the FPR
    network (:class:`.fpr_rescore.LensFPRRescorer`)."""
    from .experts import LensExperts
    from .fpr_rescore import LensFPRRescorer
    return ((() if settings.experts is None else
             (LensExperts(list(settings.experts)), )),
            LensFPRRescorer.from_options(settings.fpr_config,
                                         settings.fpr_checkpoint))


WHOLE_SCAN_STEPS.register(WholeScanMethod(
    name='lens', add_arguments=add_whole_scan_arguments,
    settings=LensScanSettings.from_args, steps=_whole_scan_steps))
