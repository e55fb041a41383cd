# Copyright (c) mmlesion contributors. All rights reserved.
"""The data set a study runs on: the synthetic 2.5D DeepLesion layout with
real DeepLesion lesion sizes (:mod:`mmlesion.datasets.demo`), generated once
into the study folder.

Presets:

* ``'deeplesion'``: the study data. Lesion long / short axes of real
  DeepLesion lesions of the same coarse type (``size_source='deeplesion'``,
  needs ``DL_info_{val,test}.csv`` of the shared data), 256 x 256 slices,
  120 / 20 / 40 key slices (train / val / test), vessels and bowel loops as
  unlabeled look-alikes, types tied to their organ. Sized so that one
  demo-sized row trains in minutes on a CPU.
* ``'quick'``: a smoke-test set (8 / 2 / 3 key slices, 128 x 128, the
  built-in quantile table so that it needs no shared file).
"""
import json
import os.path as osp
from typing import Dict

from mmlesion.datasets.demo import DeepLesionDemoGenerator
from mmlesion.datasets.demo.deeplesion_config import META_FILE

STUDY_DATA_PRESETS: Dict[str, dict] = {
    'deeplesion':
    dict(num_train=120, num_val=20, num_test=40, image_size=256,
         size_source='deeplesion'),
    'quick':
    dict(num_train=8, num_val=2, num_test=3, image_size=128,
         size_source='deeplesion_quantiles'),
}


def ensure_study_data(root: str, preset: str = 'deeplesion',
                      seed: int = 0) -> str:
    """Generate the preset's data set into ``root`` unless it is there.

    An existing ``root`` is used only if its ``demo_meta.json`` says it was
    made with the same preset settings and seed (nothing is overwritten).

    Args:
        root (str): data folder (``<study work dir>/data_<preset>``).
        preset (str): a key of :data:`STUDY_DATA_PRESETS`.
        seed (int): seed of the data (fixed across the study's seeds: the
            seeds vary the training, not the data).

    Returns:
        str: ``root`` with a trailing ``/`` (a config ``data_root``).

    Raises:
        ValueError: unknown preset, or ``root`` holds other data.
    """
    if preset not in STUDY_DATA_PRESETS:
        raise ValueError(f'study data preset {preset!r}: choose one of '
                         f'{sorted(STUDY_DATA_PRESETS)}')
    settings = dict(STUDY_DATA_PRESETS[preset], seed=seed)
    meta = osp.join(root, META_FILE)
    if osp.isfile(meta):
        with open(meta) as f:
            config = json.load(f).get('config', {})
        diff = {k: (config.get(k), v) for k, v in settings.items()
                if config.get(k) != v}
        if diff:
            raise ValueError(f'{root} holds a data set made with other '
                             f'settings ({diff}); use another --work-dir or '
                             'remove it')
    elif osp.exists(root):
        raise ValueError(f'{root} exists and is not a generated data set')
    else:
        DeepLesionDemoGenerator(**settings).generate(root)
    return osp.join(root, '')
