# Copyright (c) mmlesion contributors. All rights reserved.
"""Tiny LENS and LENS FPR checkpoints with random weights, for tests of the
LENS tools' plumbing (``eval_lens_3d.py``, ``infer_volume.py``)."""
from pathlib import Path
from typing import Tuple, Union

import torch

#: The demo row (c) config: 2 experts, tiny DenseNet, ``init_cfg=None``.
LENS_DEMO_CFG = ('lens/demo/lens-afp-multi-fusion_densenet-tiny_fpn_radam-12e_deeplesion-demo-2sets.py')
#: The demo FPR config: 8 base channels, ``init_cfg=None``.
FPR_DEMO_CFG = 'lens/demo/lens-fpr_resnet18-3d-tiny_radam-6e_deeplesion-demo-partial.py'


def save_random_lens_checkpoints(out_dir: Union[str, Path],
                                 seed: int = 0) -> Tuple[Path, Path]:
    """Build the demo LENS and FPR models with seeded random weights and
    save their state dicts.

    Args:
        out_dir (str | Path): folder for ``lens.pth`` and ``fpr.pth``.
        seed (int): torch seed.

    Returns:
        tuple: (LENS checkpoint, FPR checkpoint) paths.
    """
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope

    from mmlesion.utils.configs.lookup import get_config
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    torch.manual_seed(seed)
    for name, cfg_name in (('lens', LENS_DEMO_CFG), ('fpr', FPR_DEMO_CFG)):
        with DefaultScope.overwrite_default_scope('mmdet'):
            model = MODELS.build(get_config(cfg_name).model)
        model.init_weights()
        path = out / f'{name}.pth'
        torch.save(dict(state_dict=model.state_dict()), path)
        paths.append(path)
    return paths[0], paths[1]
