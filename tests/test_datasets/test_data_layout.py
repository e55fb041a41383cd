# Copyright (c) mmlesion contributors. All rights reserved.
"""``check_data_root``: a data root in the wrong layout, a missing derived
file, an empty split and a replica, each in one line that names what was
expected, where, and the command that makes it."""
import json

import pytest

from projects.replicas.marker import replica_marker_text
from mmlesion.datasets.replica_marker import REPLICA_FILE
from mmlesion.datasets.data_layout import (DataLayoutError, check_data_root,
                                           check_release_root, iter_datasets)

# `python tools/...` runs fork a process that imported mmdet once
# (conftest, tools_forked).
pytestmark = pytest.mark.usefixtures('tools_forked')

HEADER = ('File_name,Patient_index,Study_index,Series_ID,Key_slice_index,'
          'Measurement_coordinates,Bounding_boxes,Lesion_diameters_Pixel_,'
          'Normalized_lesion_location,Coarse_lesion_type,Possibly_noisy,'
          'Slice_range,Spacing_mm_px_,Image_size,DICOM_windows,'
          'Patient_gender,Patient_age,Train_Val_Test\n')


def _deeplesion(root, splits=(1, 2, 3)):
    (root / 'Images_png' / '000001_01_01').mkdir(parents=True)
    rows = ''.join(f'000001_01_01_{100 + s:03d}.png,1,1,1,{100 + s},'
                   '"1,1,2,2","1,1,2,2","1,1",0.5,1,0,"99, 110",'
                   '"0.8, 0.8, 2",512,"-160, 240",M,50,' + f'{s}\n'
                   for s in splits)
    (root / 'DL_info.csv').write_text(HEADER + rows)
    return root


def _cfg(dataset, loader='train_dataloader'):
    return {loader: dict(batch_size=1, dataset=dataset)}


def _dl(root, split='train', **kw):
    return dict(type='DeepLesionDataset', data_root=f'{root}/',
                ann_file='DL_info.csv', data_prefix=dict(img='Images_png/'),
                split=split, **kw)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_deeplesion_in_layout_passes(in_tmp):
    _deeplesion(in_tmp / 'data' / 'DeepLesion')
    assert check_data_root(_cfg(_dl('data/DeepLesion'))) == []


def test_deeplesion_root_missing(in_tmp):
    with pytest.raises(DataLayoutError) as err:
        check_data_root(_cfg(_dl('data/DeepLesion')))
    msg = str(err.value)
    assert msg.startswith('data/DeepLesion/ not found: download the '
                          'DeepLesion release')
    assert '\n' not in msg


@pytest.mark.parametrize('missing, expected', [
    ('DL_info.csv', 'data/DeepLesion/DL_info.csv not found'),
    ('Images_png', 'data/DeepLesion/Images_png/ not found'),
])
def test_deeplesion_root_without_a_part(in_tmp, missing, expected):
    import shutil
    root = _deeplesion(in_tmp / 'data' / 'DeepLesion')
    target = root / missing
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(DataLayoutError, match=expected):
        check_data_root(_cfg(_dl('data/DeepLesion')))


def test_missing_split_names_the_splits_present(in_tmp):
    _deeplesion(in_tmp / 'data' / 'DeepLesion', splits=(1, 1, 3))
    with pytest.raises(DataLayoutError) as err:
        check_data_root(_cfg(_dl('data/DeepLesion', split='val'),
                             'val_dataloader'))
    msg = str(err.value)
    assert "no row of split 'val' (Train_Val_Test = 2" in msg
    assert 'train: 2, test: 1' in msg


def test_missing_split_of_an_export_names_the_flag(in_tmp):
    _deeplesion(in_tmp / 'data' / 'kits19_2d', splits=(1, ))
    with pytest.raises(DataLayoutError, match='--test-fraction above 0'):
        check_data_root(_cfg(_dl('data/kits19_2d', split='test'),
                             'test_dataloader'))


def test_missing_2d_export_names_the_converter(in_tmp):
    multi = dict(type='LENSMultiDataset', datasets=[
        _dl('data/lens/luna16', mined_ann_file='lens_extra_slices.json')])
    multi['datasets'][0]['type'] = 'DeepLesionMinedDataset'
    with pytest.raises(DataLayoutError) as err:
        check_data_root(_cfg(multi))
    msg = str(err.value)
    assert msg.startswith('data/lens/luna16/ not found: it is a 2D export')
    assert ('`python tools/dataset_converters/luna16.py data/LUNA16 '
            '--annotations data/LUNA16/annotations.csv') in msg
    assert '--export-2d data/lens/luna16`' in msg


def test_missing_mined_file_names_the_miner(in_tmp):
    _deeplesion(in_tmp / 'data' / 'DeepLesion')
    ds = _dl('data/DeepLesion', mined_ann_file='lens_mined.json')
    ds['type'] = 'DeepLesionMinedDataset'
    with pytest.raises(DataLayoutError,
                       match='lens_mined.json not found: make it with '
                       '`python tools/lens_mine_annotations.py'):
        check_data_root(_cfg(ds))


def _luna(root):
    (root / 'subset0').mkdir(parents=True)
    for name in ('annotations.csv', 'seriesuids.csv'):
        (root / name).write_text('x\n')
    return root


def _volume_ds(ann='data/LUNA16/annotations/luna16.json', **kw):
    return dict(type='CrossValVolumeDataset', data_root='data/LUNA16/',
                ann_file='annotations/luna16.json', fold=0, **kw) \
        if ann.startswith('data/LUNA16') else dict(
            type='CTVolumeDataset', ann_file=ann, **kw)


def test_missing_luna16_json_names_the_converter(in_tmp):
    _luna(in_tmp / 'data' / 'LUNA16')
    with pytest.raises(DataLayoutError) as err:
        check_data_root(_cfg(_volume_ds()))
    msg = str(err.value)
    assert msg == (
        'data/LUNA16/annotations/luna16.json not found: make it with '
        '`python tools/dataset_converters/luna16.py data/LUNA16 '
        '--annotations data/LUNA16/annotations.csv --excluded '
        'data/LUNA16/annotations_excluded.csv --seriesuids '
        'data/LUNA16/seriesuids.csv --out '
        'data/LUNA16/annotations/luna16.json`')


def test_luna16_root_without_subsets_comes_first(in_tmp):
    root = in_tmp / 'data' / 'LUNA16'
    root.mkdir(parents=True)
    (root / 'annotations.csv').write_text('x\n')
    with pytest.raises(DataLayoutError,
                       match=r'data/LUNA16/subset0..subset9/ not found'):
        check_data_root(_cfg(_volume_ds()))


def test_luna16_root_without_annotations_csv(in_tmp):
    root = _luna(in_tmp / 'data' / 'LUNA16')
    (root / 'annotations.csv').unlink()
    with pytest.raises(DataLayoutError,
                       match='data/LUNA16/annotations.csv not found'):
        check_release_root('luna16', 'data/LUNA16')


def test_missing_lung_masks(in_tmp):
    root = _luna(in_tmp / 'data' / 'LUNA16')
    (root / 'annotations').mkdir()
    (root / 'annotations' / 'luna16.json').write_text('{}')
    ds = _volume_ds(pipeline=[dict(type='Compose', transforms=[dict(
        type='CropToLungs', mask_dir='data/LUNA16/seg-lungs-LUNA16/')])])
    with pytest.raises(DataLayoutError,
                       match='seg-lungs-LUNA16/ not found: unpack'):
        check_data_root(_cfg(ds))


def test_missing_kits19_json_checks_the_release_first(in_tmp):
    (in_tmp / 'data' / 'kits19').mkdir(parents=True)
    with pytest.raises(DataLayoutError,
                       match='data/kits19/data/case_XXXXX/ not found'):
        check_data_root(_cfg(_volume_ds('data/kits19/kits19.json')))
    (in_tmp / 'data' / 'kits19' / 'data' / 'case_00000').mkdir(parents=True)
    with pytest.raises(DataLayoutError, match='make it with `python tools/'
                       'dataset_converters/kits19.py data/kits19/data'):
        check_data_root(_cfg(_volume_ds('data/kits19/kits19.json')))


def test_replica_is_a_warning_not_an_error(in_tmp):
    root = _deeplesion(in_tmp / 'data' / 'DeepLesion')
    (root / REPLICA_FILE).write_text(
        replica_marker_text('deeplesion', 'tiny', 0, 'DeepLesion release'))
    cfg = _cfg(_dl('data/DeepLesion'))
    cfg['test_dataloader'] = dict(dataset=_dl('data/DeepLesion', 'test'))
    (line, ) = check_data_root(cfg)  # one line per replica
    assert line.startswith('data/DeepLesion is a release replica '
                           '(deeplesion')
    assert 'SYNTHETIC' in line and 'never report' in line


def test_replica_volume_json(in_tmp):
    root = _luna(in_tmp / 'data' / 'LUNA16')
    (root / REPLICA_FILE).write_text(
        replica_marker_text('luna16', 'tiny', 0, 'LUNA16'))
    (root / 'annotations').mkdir()
    (root / 'annotations' / 'luna16.json').write_text(json.dumps({}))
    (line, ) = check_data_root(_cfg(_volume_ds()))
    assert 'release replica (luna16' in line


def test_demo_root_names_the_generator(in_tmp):
    with pytest.raises(DataLayoutError, match='generate_demo_data.py --out '
                       'data/demo_deeplesion'):
        check_data_root(_cfg(_dl('data/demo_deeplesion')))


def test_wrappers_unrolled_and_other_types_ignored():
    cfg = dict(train_dataloader=dict(dataset=dict(
        type='RepeatDataset', dataset=dict(type='LENSMultiDataset', datasets=[
            dict(type='A'), dict(type='B')]))), val_dataloader=None)
    assert [d['type'] for _, d in iter_datasets(cfg)] == ['A', 'B']
    assert check_data_root(cfg) == []


def test_train_tool_stops_with_one_line(in_tmp):
    """tools/train.py ends with the layout error's line before building."""
    import subprocess
    import sys

    from mmlesion.testing import repo_root
    cfg = repo_root() / 'configs' / 'elixirnet' / \
        'elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py'
    run = subprocess.run(
        [sys.executable, str(repo_root() / 'tools' / 'train.py'), str(cfg),
         '--work-dir', str(in_tmp / 'w')], cwd=in_tmp, capture_output=True,
        text=True, timeout=300)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith(
        'error: data/DeepLesion/ not found: download the DeepLesion')


def test_name_evaluated_data_names_the_split_and_its_file():
    """What tools/test.py says first and the FROC curve's title."""
    from mmengine.config import Config

    from mmlesion.datasets.data_layout import name_evaluated_data
    ds = dict(type='DeepLesionDataset', data_root='data/dl/',
              ann_file='DL_info.csv', split=3)
    cfg = Config(dict(
        test_dataloader=dict(dataset=ds),
        val_dataloader=dict(dataset=dict(
            type='ConcatDataset', datasets=[dict(ds, split='val'),
                                            dict(ds, split=None)])),
        test_evaluator=[dict(type='FROCMetric'), dict(type='FROC3DMetric')],
        val_evaluator=dict(type='FROCMetric', split='mine')))
    assert name_evaluated_data(cfg) == 'test split: data/dl/DL_info.csv'
    assert cfg.test_evaluator[0].split == 'test split: data/dl/DL_info.csv'
    assert 'split' not in cfg.test_evaluator[1]  # takes none
    assert name_evaluated_data(cfg, 'val_dataloader', 'val_evaluator') == (
        'val split: data/dl/DL_info.csv + data/dl/DL_info.csv')
    assert cfg.val_evaluator.split == 'mine'  # the config's own wins
