# Copyright (c) mmlesion contributors. All rights reserved.
"""Rows (d) and (e) of the LENS demo / study read the files they wrote."""
import os.path as osp

from projects.lens.lens_demo import demo_row_config
from projects.lens.lens_demo_mining import with_mined_file


def _as_the_dataset_reads(data_root: str, path: str) -> str:
    """The absolute path a dataset reads for ``path``: mmengine's
    ``BaseDataset`` rule (also ``DeepLesionMinedDataset``'s) joins a
    relative path to ``data_root``."""
    if data_root and not osp.isabs(path):
        path = osp.join(data_root, path)
    return osp.abspath(path)


def test_row_d_reads_its_mined_file_from_a_relative_work_dir(
        tmp_path, monkeypatch):
    """A study run with a relative ``--work-dir`` writes the mined file
    under that folder; the mined dataset reads a relative ``mined_ann_file``
    from its ``data_root``, so the row must hand it a path that resolves to
    the written file (a relative one resolved to
    ``<data_root>/<work dir>/...``: "mined annotation file not found")."""
    monkeypatch.chdir(tmp_path)
    roots = {'data/demo_deeplesion/': 'work/data/demo_partial/',
             'data/demo_lung/': 'work/data/demo_lung/'}
    cfg = demo_row_config('row_d', 'work/d/seed_0', roots, epochs=1)
    written = osp.join('work', 'd', 'seed_0', 'lens_mined.json')
    cfg = with_mined_file(cfg, written)
    dataset = cfg.train_dataloader.dataset.datasets[0]
    path = _as_the_dataset_reads(dataset.data_root, dataset.mined_ann_file)
    assert path == str(tmp_path / written)


def test_row_e_reads_its_fpr_proposals_from_a_relative_work_dir(
        tmp_path, monkeypatch):
    """Step 5 writes the FPR proposal file into the row folder of a
    relative ``--work-dir``; the FPR dataset reads a relative ``ann_file``
    from its ``data_root`` (the partial data), so the config must hand it a
    path that resolves to the written file ("FPR proposal file not found:
    <data root>/<work dir>/e/seed_0/lens_fpr_proposals.json")."""
    from projects.lens.lens_demo import fpr_training_config
    monkeypatch.chdir(tmp_path)
    roots = {'data/demo_deeplesion/': 'work/data/demo_partial/',
             'data/demo_lung/': 'work/data/demo_lung/'}
    written = osp.join('work', 'e', 'seed_0', 'lens_fpr_proposals.json')
    cfg = fpr_training_config('work/e/seed_0/fpr', roots, 1, 0,
                              'work/data/demo_partial/', written)
    dataset = cfg.train_dataloader.dataset
    path = _as_the_dataset_reads(dataset.data_root, dataset.ann_file)
    assert path == str(tmp_path / written)
