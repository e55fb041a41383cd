# Copyright (c) mmlesion contributors. All rights reserved.
"""The data set a study runs on, generated once into the study folder:
the synthetic 2.5D DeepLesion layout with real DeepLesion lesion sizes, or
synthetic chest volumes in the LUNA16 layout (:mod:`.synthetic`).

Presets (2D, :func:`ensure_study_data`):

* ``'deeplesion'``: the study data. Lesion long / short axes of real
  DeepLesion lesions of the same coarse type (``size_source='deeplesion'``,
  needs ``DL_info_{val,test}.csv`` of the shared data), 256 x 256 slices,
  120 / 20 / 80 key slices (train / val / test; the 80 test slices hold
  about 150 lesions, the fewest a verdict may rest on), vessels and bowel
  loops as unlabeled look-alikes, types tied to their organ. Sized so that
  one demo-sized row trains in minutes on a CPU (testing is cheap next to
  training).
* ``'quick'``: a smoke-test set (8 / 2 / 3 key slices, 128 x 128, the
  built-in quantile table so that it needs no shared file).
"""
import json
import os.path as osp
from typing import Dict, Optional

from mmlesion.apps.own_data import ConvertSettings, convert_dataset
from mmlesion.apps.demo.settings import META_FILE
from projects.study_demo.synthetic.deeplesion import StudyDemoGenerator
from projects.study_demo.synthetic.volumes import (GROUND_TRUTH_FILE,
                                                   DemoVolumeGenerator)
from projects.study_demo.study.test_set import (MIN_TEST_LESIONS, MIN_TEST_NODULES,
                                          StudyTestSet)
from mmlesion.datasets.deeplesion.dl_info import parse_dl_info

STUDY_DATA_PRESETS: Dict[str, dict] = {
    'deeplesion':
    dict(num_train=120, num_val=20, num_test=80, image_size=256,
         size_source='deeplesion'),
    'quick':
    dict(num_train=8, num_val=2, num_test=3, image_size=128,
         size_source='deeplesion_quantiles'),
}


#: Volume presets (:func:`ensure_volume_study_data`), settings of
#: :class:`~projects.study_demo.synthetic.volume_settings.DemoVolumeConfig`:
#:
#: * ``'luna16vol'``: the 3D study data (3D Aggregated Faster R-CNN
#:   ablation). 70 small chest scans (the study holds out half of them by
#:   a hash of the scan id: about 35 scans with about 75 nodules, above the
#:   60 a verdict may rest on) (96-112 px slices of 0.6-0.9 mm, 56-72
#:   slices of 1-1.25 mm: about 60-100 mm a side at 1 mm), 1-4 nodules of
#:   5-20 mm each (solid and part-solid, soft-tissue attenuation), up to 3
#:   vessel bifurcations per scan as look-alikes, every nodule >= 3 mm
#:   annotated (``unannotated_prob=0``: in a comparison an unlisted nodule
#:   would only be noise in the false positives).
#: * ``'luna16vol-quick'``: a smoke-test set (12 scans).
VOLUME_STUDY_PRESETS: Dict[str, dict] = {
    'luna16vol':
    dict(num_luna=70, num_kits=0, num_lits=0, size_range=(96, 112),
         slice_thicknesses=(1., 1.25), num_slices_range=(56, 72),
         nodule_diameter_range=(5., 20.), unannotated_prob=0.),
    'luna16vol-quick':
    dict(num_luna=12, num_kits=0, num_lits=0, size_range=(64, 72),
         slice_thicknesses=(1., ), num_slices_range=(48, 56),
         nodule_diameter_range=(5., 12.), unannotated_prob=0.),
}


def _check_existing(root: str, meta: str, config_key: str,
                    settings: dict) -> bool:
    """Whether ``root`` already holds the data set made with ``settings``
    (read from ``config_key`` of its JSON ``meta`` file).

    Raises:
        ValueError: ``root`` holds other data or is not a generated set.
    """
    if osp.isfile(meta):
        with open(meta) as f:
            config = json.load(f).get(config_key, {})
        # JSON turns tuples into lists
        settings = json.loads(json.dumps(settings))
        diff = {k: (config.get(k), v) for k, v in settings.items()
                if config.get(k) != v}
        if diff:
            raise ValueError(f'{root} holds a data set made with other '
                             f'settings ({diff}); use another --work-dir or '
                             'remove it')
        return True
    if osp.exists(root):
        raise ValueError(f'{root} exists and is not a generated data set')
    return False


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
    if not _check_existing(root, osp.join(root, META_FILE), 'config',
                           settings):
        StudyDemoGenerator(**settings).generate(root)
    return osp.join(root, '')


def ensure_volume_study_data(root: str, preset: str = 'luna16vol',
                             seed: int = 0) -> str:
    """Generate the synthetic chest volumes of a volume preset into
    ``root`` and convert them with the LUNA16 converter, unless they are
    there.

    Writes ``root/luna16/`` (``.mhd`` scans, ``annotations.csv``,
    ``annotations_excluded.csv``) and ``root/luna16/luna16.json`` (nodules
    as boxes, excluded findings as ignored boxes). An existing ``root`` is
    used only if its ``ground_truth.json`` says it was made with the same
    preset settings and seed.

    Args:
        root (str): data folder (``<study work dir>/data_<preset>``).
        preset (str): a key of :data:`VOLUME_STUDY_PRESETS`.
        seed (int): seed of the data (fixed across the study's seeds).

    Returns:
        str: the data root of the configs (``root/luna16/``; the annotation
        file is ``luna16.json`` in it).

    Raises:
        ValueError: unknown preset, or ``root`` holds other data.
    """
    if preset not in VOLUME_STUDY_PRESETS:
        raise ValueError(f'volume study data preset {preset!r}: choose one '
                         f'of {sorted(VOLUME_STUDY_PRESETS)}')
    settings = dict(VOLUME_STUDY_PRESETS[preset], seed=seed)
    luna = osp.join(root, 'luna16')
    ann_file = osp.join(luna, 'luna16.json')
    if not _check_existing(root, osp.join(root, GROUND_TRUTH_FILE), 'config',
                           settings):
        DemoVolumeGenerator(**settings).generate(root)
    if not osp.isfile(ann_file):
        convert_dataset(ConvertSettings(
            luna, ann_file, 'luna16', boxes=osp.join(luna, 'annotations.csv'),
            excluded=osp.join(luna, 'annotations_excluded.csv'),
            show_progress=False))
    return osp.join(luna, '')


def data_seed_of(meta_file: str) -> int:
    """The seed a generated data set was made with (0 when unknown)."""
    if osp.isfile(meta_file):
        with open(meta_file) as f:
            return int(json.load(f).get('config', {}).get('seed', 0))
    return 0


def deeplesion_test_set(root: str, split: str = 'test') -> StudyTestSet:
    """What a 2D study tests on: the lesions of ``split`` in ``root``'s
    ``DL_info.csv`` (noisy rows excluded, as the datasets drop them) and
    their key slices.

    Args:
        root (str): a DeepLesion-layout data root.
        split (str): ``'test'`` (default) or ``'val'``.

    Returns:
        StudyTestSet: with the data seed of a generated set and the 2D
        minimum (:data:`MIN_TEST_LESIONS`).
    """
    code = {'train': 1, 'val': 2, 'test': 3}[split]
    recs = [
        r for r in parse_dl_info(osp.join(root, 'DL_info.csv'))
        if r.split == code and not r.noisy
    ]
    return StudyTestSet(
        lesions=len(recs),
        images=len({r.file_name for r in recs}),
        data_seeds=(data_seed_of(osp.join(root, META_FILE)), ),
        minimum=MIN_TEST_LESIONS)


def volume_test_set(dataset, data_root: Optional[str] = None
                    ) -> StudyTestSet:
    """What a 3D study tests on: the nodules (not ignored) of the held-out
    scans of a built volume dataset (e.g. the study config's test
    ``CrossValVolumeDataset``).

    Args:
        dataset: a dataset whose ``get_data_info(i)['instances']`` lists the
            findings of scan ``i`` (``ignore_flag`` 1 for ignored ones).
        data_root (str, optional): the generated data set's folder (its
            ``ground_truth.json`` one level up names the data seed).

    Returns:
        StudyTestSet: nodules on scans, minimum :data:`MIN_TEST_NODULES`.
    """
    nodules = 0
    for i in range(len(dataset)):
        nodules += sum(not inst.get('ignore_flag', 0)
                       for inst in dataset.get_data_info(i)['instances'])
    seed = 0
    if data_root:
        seed = data_seed_of(
            osp.join(osp.dirname(osp.normpath(data_root)), GROUND_TRUTH_FILE))
    return StudyTestSet(
        lesions=nodules,
        images=len(dataset),
        unit='nodules',
        image_unit='scans',
        data_seeds=(seed, ),
        minimum=MIN_TEST_NODULES)


def study_test_set(cfg, data_root: str):
    """What a 2D study's rows test on: the config's test dataset as built
    (:func:`projects.study_demo.study.config_test_set`), with the seed of the
    generated data in ``data_root`` (0 for other data)."""
    from projects.study_demo.study import config_test_set
    return config_test_set(
        cfg, data_seeds=(data_seed_of(osp.join(data_root, META_FILE)), ))
