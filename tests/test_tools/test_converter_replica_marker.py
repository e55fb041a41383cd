# Copyright (c) mmlesion contributors. All rights reserved.
"""What a converter makes from a release replica is marked as synthetic:
the folders it writes hold ``REPLICA.txt``, an annotation file outside the
replica has ``<file>.REPLICA.txt`` beside it, so that ``tools/reproduce.py``
(which refuses a replica as ``--data-root``) and training / testing (which
warn, :mod:`mmlesion.datasets.data_layout`) still see it downstream. The
same outputs converted from real data lose the markers again."""
import shutil

import pytest

from mmlesion.datasets.data_layout import check_data_root
from mmlesion.datasets.replica_marker import (REPLICA_FILE,
                                              find_data_replica_marker,
                                              find_replica_marker,
                                              read_replica_marker,
                                              replica_sidecar)
from tests.helpers.tool_modules import load_tool


def _replica(root, dataset):
    assert load_tool('projects/replicas/tools/generate_release_replica.py').main(
        [dataset, '--out', str(root), '--size', 'tiny', '--quiet']) == 0
    return root


def _luna_argv(root, out, export):
    r = str(root)
    return [r, '--annotations', f'{r}/annotations.csv', '--excluded',
            f'{r}/annotations_excluded.csv', '--seriesuids',
            f'{r}/seriesuids.csv', '--out', str(out), '--export-2d',
            str(export)]


def _volume_cfg(ann_file):
    return dict(test_dataloader=dict(dataset=dict(
        type='CTVolumeDataset', ann_file=str(ann_file), pipeline=[])))


def _dl_cfg(root):
    return dict(test_dataloader=dict(dataset=dict(
        type='DeepLesionDataset', data_root=f'{root}/', ann_file='DL_info.csv',
        data_prefix=dict(img='Images_png/'), split='train')))


def test_luna16_outputs_carry_the_marker_and_lose_it_on_real_data(
        tmp_path):
    root = _replica(tmp_path / 'LUNA16', 'luna16')
    tool = load_tool('dataset_converters/luna16.py')
    out, export = tmp_path / 'ann' / 'luna16.json', tmp_path / 'luna16_2d'
    assert tool.main(_luna_argv(root, out, export)) == 0
    # the 2D export: a folder of its own, marked inside
    marker = read_replica_marker(export / REPLICA_FILE)
    assert marker['dataset'] == 'luna16' and marker['size'] == 'tiny'
    assert marker['derived_from'] == str(root)
    assert 'luna16 converter' in marker['made_by']
    assert find_replica_marker(export)['root'] == str(export)  # reproduce
    (line, ) = check_data_root(_dl_cfg(export))  # train / test
    assert 'is a release replica (luna16' in line
    assert f'made from {root}' in line
    # the annotation file: its folder may hold real data, so beside it
    assert not (out.parent / REPLICA_FILE).exists()
    assert read_replica_marker(replica_sidecar(str(out)))['dataset'] == \
        'luna16'
    (line, ) = check_data_root(_volume_cfg(out))
    assert line.startswith(f'{out} is a release replica (luna16')

    # the same scans as real data (no REPLICA.txt) into the same outputs:
    # the markers of the earlier conversion go
    real = tmp_path / 'real'
    shutil.copytree(root, real)
    (real / REPLICA_FILE).unlink()
    assert tool.main(_luna_argv(real, out, export) + ['--overwrite']) == 0
    assert not (export / REPLICA_FILE).exists()
    assert not (tmp_path / 'ann' / f'luna16.json.{REPLICA_FILE}').exists()
    assert check_data_root(_dl_cfg(export)) == []
    assert check_data_root(_volume_cfg(out)) == []


def test_luna16_documented_command_inside_the_replica(tmp_path):
    """The README's command writes into the replica: nothing to add, the
    replica's own marker covers the annotation file."""
    root = _replica(tmp_path / 'LUNA16', 'luna16')
    r = str(root)
    assert load_tool('dataset_converters/luna16.py').main([
        r, '--annotations', f'{r}/annotations.csv', '--excluded',
        f'{r}/annotations_excluded.csv', '--seriesuids',
        f'{r}/seriesuids.csv', '--out', f'{r}/annotations/luna16.json'
    ]) == 0
    assert sorted(p.name for p in root.rglob(f'*{REPLICA_FILE}')) == [
        REPLICA_FILE]
    found = find_data_replica_marker(f'{r}/annotations/luna16.json')
    assert found['root'] == r and 'derived_from' not in found


def test_deeplesion_to_3d_chunks_carry_the_marker(tmp_path):
    root = _replica(tmp_path / 'DeepLesion', 'deeplesion')
    out = tmp_path / 'DeepLesion3D'
    tool = load_tool('dataset_converters/deeplesion_to_3d.py')
    assert tool.cli([f'{root}/DL_info.csv', f'{root}/Images_png',
                     str(out)]) == 0
    marker = read_replica_marker(out / REPLICA_FILE)
    assert marker['dataset'] == 'deeplesion'
    assert marker['derived_from'] == str(root)
    # what tools/reproduce.py checks of --data-root, and train/test
    assert find_replica_marker(out)['root'] == str(out)
    (line, ) = check_data_root(_volume_cfg(out / 'deeplesion3d_train.json'))
    assert 'is a release replica (deeplesion' in line
    # from real data (the marker gone from the input) the mark goes too
    (root / REPLICA_FILE).unlink()
    assert tool.cli([f'{root}/DL_info.csv', f'{root}/Images_png', str(out),
                     '--overwrite']) == 0
    assert not (out / REPLICA_FILE).exists()


@pytest.mark.parametrize('dataset', ['kits19', 'lits', 'nih_ln'])
def test_mask_converters_mark_their_exports(dataset, tmp_path):
    root = _replica(tmp_path / 'release', dataset)
    inputs = {'kits19': [f'{root}/data'], 'lits': [str(root)],
              'nih_ln': [f'{root}/CT Lymph Nodes',
                         f'{root}/MED_ABD_LYMPH_MASKS']}[dataset]
    out, export = tmp_path / f'{dataset}.json', tmp_path / 'export'
    assert load_tool(f'dataset_converters/{dataset}.py').main(
        inputs + ['--out', str(out), '--export-2d', str(export)]) == 0
    assert read_replica_marker(export / REPLICA_FILE)['dataset'] == dataset
    assert read_replica_marker(
        replica_sidecar(str(out)))['derived_from'] == str(root)


def test_recist_mask_cache_of_a_replica_is_marked(tmp_path):
    root = _replica(tmp_path / 'DeepLesion', 'deeplesion')
    out = tmp_path / 'masks'
    assert load_tool('dataset_converters/recist_to_masks.py').main(
        ['--csv', f'{root}/DL_info.csv', '--out', str(out)]) == 0
    assert read_replica_marker(out / REPLICA_FILE)['dataset'] == 'deeplesion'
    assert (out / 'meta.json').is_file()
