# Copyright (c) mmlesion contributors. All rights reserved.
"""The dataset converter on a folder: masks (semantic, instance), box CSVs
(world, RECIST, voxel), the patient split, one line per bad case, the
process pool and resuming after a kill; and the presets' outputs pinned to
those of the per-dataset converters they replaced."""
import hashlib
import json
import os

import numpy as np
import pytest

from mmlesion.apps.own_data import ConvertSettings, convert_dataset
from mmlesion.apps.own_data import common
from mmlesion.apps.own_data import convert as convert_module
from mmlesion.apps.own_data.scan_records import records_dir
from projects.replicas.release import generate_release_replica
from mmlesion.testing.volume_files import write_volume
from tests.helpers.tool_modules import load_tool

#: sha256 (first 16 hex) of the annotation file and of the 2D export (file
#: names and bytes, markers left out) that the per-dataset converters
#: (kits19.py, lits.py, nih_ln.py, luna16.py before they became presets)
#: wrote for the tiny replicas of seed 0, outputs in ``out/`` beside
#: ``rep/``; since then every annotation file names the patient of each
#: scan (``patient_id``), and the val split that the hash of the patient
#: ids left empty on the two scans of LiTS and LUNA16 gets one of them
#: (the exports' ``Train_Val_Test``). LUNA16's: its replica gained a scan
#: without a nodule (the release's negative patients), which the hash of
#: the patient ids puts in val; the values are the preset's on it. The
#: exports' JSON files (``lens_extra_slices.json``) end with a newline, as
#: every JSON the package writes (one atomic JSON writer); no other byte
#: changed. Since then ``series_map.json`` lists each series' lesions (own
#: key slice and box there, for the planner); ``DL_info.csv`` and the PNGs
#: are byte for byte those before (checked against the previous code).
BEFORE = {
    'kits19': ('e45f8444aedeb366', '3c6c62ae8f728867'),
    'lits': ('0d1304368503557b', 'c9ebdb25dd2e5408'),
    'nih_ln': ('70c43f8bb765d7bd', 'fa909f278165c602'),
    'luna16': ('30aad9bd9630df5f', 'd357804a33248eaa'),
}
ARGS = {
    'kits19': ['{r}/data'],
    'lits': ['{r}'],
    'nih_ln': ['{r}/CT Lymph Nodes', '{r}/MED_ABD_LYMPH_MASKS'],
    'luna16': ['{r}', '--annotations', '{r}/annotations.csv', '--excluded',
               '{r}/annotations_excluded.csv', '--seriesuids',
               '{r}/seriesuids.csv'],
}


def _tree_hash(path):
    if os.path.isfile(path):
        return hashlib.sha256(open(path, 'rb').read()).hexdigest()[:16]
    h = hashlib.sha256()
    for d, _, files in sorted(os.walk(path)):
        for f in sorted(files):
            if f != 'REPLICA.txt':
                p = os.path.join(d, f)
                h.update(os.path.relpath(p, path).encode())
                h.update(open(p, 'rb').read())
    return h.hexdigest()[:16]


@pytest.mark.parametrize('dataset', sorted(BEFORE))
def test_presets_write_what_the_old_converters_wrote(dataset, tmp_path,
                                                     capsys):
    root = tmp_path / 'rep' / dataset
    generate_release_replica(dataset, root, seed=0, size='tiny')
    out = tmp_path / 'out' / f'{dataset}.json'
    argv = [a.format(r=root) for a in ARGS[dataset]] + [
        '--out', str(out), '--export-2d', str(tmp_path / 'out' / 'x2d'),
        '--workers', '2']
    assert load_tool(f'dataset_converters/{dataset}.py').main(argv) == 0, \
        capsys.readouterr().err
    assert (_tree_hash(str(out)),
            _tree_hash(str(tmp_path / 'out' / 'x2d'))) == BEFORE[dataset]
    assert not os.path.exists(records_dir(str(out)))


def _ct(shape=(10, 20, 20)):
    img = np.full(shape, -100, np.int16)
    img[:, 0] = -1000  # air: a CT in HU
    return img


def _folder(tmp_path, n=4, mask_fn=None, **kw):
    """n scans ``p<k>_scan<j>`` (two per patient) with masks."""
    for i in range(n):
        vid = f'p{i // 2}_scan{i % 2}'
        write_volume(str(tmp_path / 'img' / f'{vid}.nii.gz'), _ct(), **kw)
        seg = np.zeros((10, 20, 20), np.uint8)
        seg[2:4, 3:6, 3:6] = 1
        seg[6:8, 10:14, 10:14] = 2
        if mask_fn:
            seg = mask_fn(i, seg)
        write_volume(str(tmp_path / 'lab' / f'{vid}.nii.gz'), seg, **kw)
    return str(tmp_path / 'img'), str(tmp_path / 'lab')


def _run(tmp_path, scans, name='a.json', **kw):
    out = str(tmp_path / name)
    summary = convert_dataset(ConvertSettings(
        scans, out, show_progress=False, **kw))
    return summary, json.load(open(out))


def test_folder_of_masks_semantic_and_instance(tmp_path):
    scans, masks = _folder(tmp_path, n=2)
    summary, data = _run(tmp_path, scans, masks=masks)
    assert summary['volumes'] == 2 and summary['lesions'] == 4
    assert data['metainfo']['classes'] == ['lesion']
    assert [v['id'] for v in data['volumes']] == ['p0_scan0', 'p0_scan1']
    boxes = [a['bbox'] for a in data['volumes'][0]['annotations']]
    assert boxes[0] == [2.5, 2.5, 1.5, 5.5, 5.5, 3.5]
    _, data = _run(tmp_path, scans, 'b.json', masks=masks, labels=[2])
    assert len(data['volumes'][0]['annotations']) == 1
    # instance masks: one lesion per value, however many pieces it has
    scans, masks = _folder(tmp_path / 'i', n=1, mask_fn=lambda i, seg: (
        np.where(seg > 0, 5, 0).astype(np.uint8)))
    _, sem = _run(tmp_path, scans, 'c.json', masks=masks)
    _, ins = _run(tmp_path, scans, 'd.json', masks=masks, instances=True)
    assert len(sem['volumes'][0]['annotations']) == 2
    assert len(ins['volumes'][0]['annotations']) == 1
    assert ins['volumes'][0]['annotations'][0]['bbox'] == [
        2.5, 2.5, 1.5, 13.5, 13.5, 7.5]


def test_touching_instances_split_by_value_or_named(tmp_path, logged):
    """Two lesions of an instance map that touch (values 1 and 2) are one
    connected component: without --instances one lesion and a line naming
    the scan, its values and --instances; with it two lesions. A value in
    two separate pieces under --instances is named the other way round."""
    def touching(i, seg):
        seg[:] = 0
        seg[2:6, 4:9, 4:8] = 1
        seg[2:6, 4:9, 8:12] = 2  # face to face with lesion 1
        seg[7:9, 15:18, 15:18] = 3  # apart
        return seg

    scans, masks = _folder(tmp_path, n=1, mask_fn=touching)
    _, sem = _run(tmp_path, scans, 'sem.json', masks=masks)
    assert [a['bbox'] for a in sem['volumes'][0]['annotations']] == [
        [3.5, 3.5, 1.5, 11.5, 8.5, 5.5], [14.5, 14.5, 6.5, 17.5, 17.5, 8.5]]
    (line, ) = [m for m in logged if 'label values' in m]
    assert line == (
        f'{masks}/p0_scan0.nii.gz (scan p0_scan0): touching lesions of '
        'several label values, each component kept as one lesion; if each '
        'value is one lesion (an instance map), convert with --instances: '
        'values 1, 2 at voxel (8, 6, 4)')
    logged.clear()
    _, ins = _run(tmp_path, scans, 'ins.json', masks=masks, instances=True)
    assert [a['bbox'] for a in ins['volumes'][0]['annotations']] == [
        [3.5, 3.5, 1.5, 7.5, 8.5, 5.5], [7.5, 3.5, 1.5, 11.5, 8.5, 5.5],
        [14.5, 14.5, 6.5, 17.5, 17.5, 8.5]]
    assert not [m for m in logged if 'pieces' in m or 'values' in m]
    # a class map (every lesion 1) taken as instances: one lesion, named
    scans, masks = _folder(tmp_path / 'c', n=1,
                           mask_fn=lambda i, s: (s > 0).astype(np.uint8))
    _, one = _run(tmp_path, scans, 'one.json', masks=masks, instances=True)
    assert len(one['volumes'][0]['annotations']) == 1
    assert any(m.startswith(f'{masks}/p0_scan0.nii.gz (scan p0_scan0): a '
                            'label value in several separate pieces')
               and m.endswith('value 1 (2 pieces at voxel (8, 8, 4))')
               for m in logged), logged


def test_split_by_patient(tmp_path):
    scans, masks = _folder(tmp_path, n=40, mask_fn=lambda i, s: s * 0)
    _, data = _run(tmp_path, scans, masks=masks, val_fraction=0.3,
                   test_fraction=0.2, patient_regex=r'^(p\d+)_')
    split = {v['id']: v['split'] for v in data['volumes']}
    assert {1, 2, 3} <= set(split.values())
    for p in range(20):
        assert split[f'p{p}_scan0'] == split[f'p{p}_scan1']
    # a user's split file is honoured
    table = tmp_path / 'split.csv'
    table.write_text('volume_id,split,patient_id\n' + ''.join(
        f'p{i // 2}_scan{i % 2},{"val" if i < 4 else ""},P{i // 2}\n'
        for i in range(40)))
    _, data = _run(tmp_path, scans, 'b.json', masks=masks,
                   split_file=str(table))
    split = {v['id']: v['split'] for v in data['volumes']}
    assert [split[f'p{i // 2}_scan{i % 2}'] for i in range(4)] == [2] * 4
    # a patient's scan without a split goes where its other scans go
    table.write_text('volume_id,split,patient_id\n' + ''.join(
        f'p{i // 2}_scan{i % 2},{"test" if i % 2 else ""},P{i // 2}\n'
        for i in range(40)))
    _, data = _run(tmp_path, scans, 'c.json', masks=masks,
                   split_file=str(table))
    assert {v['split'] for v in data['volumes']} == {3}


@pytest.fixture
def logged(monkeypatch):
    lines = []
    for module in (common, convert_module):
        monkeypatch.setattr(module, 'print_log',
                            lambda msg, **kw: lines.append(msg))
    return lines


def _error(tmp_path, scans, **kw):
    with pytest.raises(ValueError) as err:
        _run(tmp_path, scans, 'bad.json', **kw)
    assert '\n' not in str(err.value)
    return str(err.value)


def test_bad_cases_one_line_naming_the_file(tmp_path, logged):
    scans, masks = _folder(tmp_path, n=2)
    # a mask on another grid
    write_volume(str(tmp_path / 'lab' / 'p0_scan1.nii.gz'),
                 np.zeros((10, 20, 21), np.uint8))
    msg = _error(tmp_path, scans, masks=masks)
    assert msg.startswith(str(tmp_path / 'lab' / 'p0_scan1.nii.gz'))
    assert 'geometry' in msg
    # two scans of one patient in two splits of the user's file
    table = tmp_path / 'split.csv'
    table.write_text('volume_id,split,patient_id\np0_scan0,train,A\n'
                     'p0_scan1,val,A\n')
    msg = _error(tmp_path, scans, masks=masks, split_file=str(table))
    assert msg.startswith(str(table)) and "patient 'A'" in msg
    # a finding outside its scan
    boxes = tmp_path / 'boxes.csv'
    boxes.write_text('seriesuid,coordX,coordY,coordZ,diameter_mm\n'
                     'p0_scan0,900,0,-290,5\n')
    msg = _error(tmp_path, scans, boxes=str(boxes))
    assert msg.startswith(f'{boxes}: finding 1 (series p0_scan0')
    assert 'outside the scan' in msg
    # an empty mask: one line naming it; the scan is kept without lesions
    scans, masks = _folder(tmp_path / 'e', n=2,
                           mask_fn=lambda i, s: s * i)
    summary, _ = _run(tmp_path, scans, 'e.json', masks=masks)
    assert summary['volumes'] == 2 and summary['lesions'] == 2
    assert any(line.startswith(f'{masks}/p0_scan0.nii.gz: empty mask')
               for line in logged)


def test_mixed_orientations_reported(tmp_path, logged):
    scans, masks = _folder(tmp_path, n=1)
    flip = (-1, 0, 0, 0, -1, 0, 0, 0, 1)  # RAS-stored
    write_volume(str(tmp_path / 'img' / 'p9_ras.nii.gz'), _ct(),
                 direction=flip)
    seg = np.zeros((10, 20, 20), np.uint8)
    seg[2:4, 3:6, 3:6] = 1
    write_volume(str(tmp_path / 'lab' / 'p9_ras.nii.gz'), seg,
                 direction=flip)
    summary, data = _run(tmp_path, scans, masks=masks)
    assert summary['orientations'] == {'LPS': 1, 'RAS': 1}
    line = next(x for x in logged if 'mixed orientations' in x)
    assert 'p9_ras.nii.gz: RAS' in line
    # canonical grid: the lesion at file voxels x, y 3..5 is at 14..16
    assert data['volumes'][1]['annotations'][0]['bbox'][:2] == [13.5, 13.5]


def test_voxel_and_recist_boxes(tmp_path):
    flip = (-1, 0, 0, 0, -1, 0, 0, 0, 1)
    write_volume(str(tmp_path / 'img' / 'a.nii.gz'), _ct(), direction=flip)
    rows = tmp_path / 'voxel.csv'
    rows.write_text('volume_id,x1,y1,z1,x2,y2,z2\na,3,4,2,5,8,3\n')
    _, data = _run(tmp_path, str(tmp_path / 'img'), boxes=str(rows),
                   box_format='voxel')
    ann = data['volumes'][0]['annotations'][0]
    # x, y flipped onto the canonical grid; z kept
    assert ann['bbox'] == [13.5, 10.5, 1.5, 16.5, 15.5, 3.5]
    rows.write_text('volume_id,x1,y1,z1,x2,y2,z2\na,3,4,2,5,8,30\n')
    assert 'outside the scan' in _error(
        tmp_path, str(tmp_path / 'img'), boxes=str(rows), box_format='voxel')
    centre = data['volumes'][0]['annotations'][0]['center_world']
    rows.write_text('volume_id,coordX,coordY,coordZ,long_axis_mm,'
                    'short_axis_mm\na,{},{},{},6,3\n'.format(*centre))
    _, data = _run(tmp_path, str(tmp_path / 'img'), 'r.json',
                   boxes=str(rows), box_format='recist')
    ann = data['volumes'][0]['annotations'][0]
    assert ann['diameter_mm'] == 6 and ann['center_world'] == pytest.approx(
        centre, abs=0.5)


def test_killed_run_resumes_without_redoing_scans(tmp_path, monkeypatch):
    scans, masks = _folder(tmp_path, n=4)
    _, clean = _run(tmp_path, scans, 'clean.json', masks=masks)
    calls = []
    real = convert_module._convert_case

    def counting(case, settings):
        if len(calls) == 2 and settings.out_file.endswith('k.json'):
            raise KeyboardInterrupt  # killed after two scans
        calls.append(case.volume_id)
        return real(case, settings)

    monkeypatch.setattr(convert_module, '_convert_case', counting)
    out = str(tmp_path / 'k.json')
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, scans, 'k.json', masks=masks)
    # two scans' records and the run's run.json
    assert len(os.listdir(records_dir(out))) == 3 and not os.path.exists(out)
    calls.clear()
    monkeypatch.setattr(convert_module, '_convert_case',
                        lambda c, s: calls.append(c.volume_id) or real(c, s))
    _, resumed = _run(tmp_path, scans, 'k.json', masks=masks)
    assert calls == ['p1_scan0', 'p1_scan1']
    assert resumed == clean and not os.path.exists(records_dir(out))
    # a record whose input changed since is not taken
    with monkeypatch.context() as m:
        m.setattr(convert_module, '_convert_case', counting)
        calls.clear()
        with pytest.raises(KeyboardInterrupt):
            _run(tmp_path, scans, 'k.json', masks=masks, overwrite=True)
    os.utime(os.path.join(masks, 'p0_scan1.nii.gz'), ns=(1, 1))
    calls.clear()
    _run(tmp_path, scans, 'k.json', masks=masks, overwrite=True)
    assert calls == ['p0_scan1', 'p1_scan0', 'p1_scan1']


def test_process_pool_writes_the_same_file(tmp_path):
    scans, masks = _folder(tmp_path, n=4)
    _run(tmp_path, scans, 'one.json', masks=masks)
    _run(tmp_path, scans, 'two.json', masks=masks, workers=2)
    assert (tmp_path / 'one.json').read_bytes() == (
        tmp_path / 'two.json').read_bytes()


def test_dicom_series_folders_and_check_only(tmp_path):
    from mmlesion.testing.volume_files import write_dicom_series
    write_dicom_series(str(tmp_path / 'scans' / 'pat1' / 'ct'), '1.2.3.4',
                       _ct((6, 16, 16)))
    boxes = tmp_path / 'boxes.csv'
    boxes.write_text('seriesuid,coordX,coordY,coordZ,diameter_mm\n'
                     'pat1/ct,4,4,5,3\nother,0,0,0,3\n')
    scans = str(tmp_path / 'scans')
    plan = convert_dataset(ConvertSettings(
        scans, str(tmp_path / 'p.json'), boxes=str(boxes), check_only=True))
    assert plan['volumes'] == 1 and not (tmp_path / 'p.json').exists()
    summary, data = _run(tmp_path, scans, boxes=str(boxes))
    assert summary['lesions'] == 1
    assert data['volumes'][0]['series_uid'] == '1.2.3.4'
    msg = _error(tmp_path, scans, boxes=str(boxes), patient_from_dicom=True)
    assert msg.startswith(str(tmp_path / 'scans' / 'pat1' / 'ct'))
    assert 'PatientID' in msg


def test_real_ct_volumes_with_made_masks(tmp_path):
    """Real CT (TotalSegmentator's example, NIfTI and DICOM series) with
    masks made here: the organ labels as instances, and a bone threshold
    on the DICOM series' grid."""
    import SimpleITK as sitk

    from mmlesion.apps.own_data.mask_boxes import mask_to_boxes_3d
    from mmlesion.datasets.volumes import VolumeOptions, load_ct_volume
    from mmlesion.testing import shared_data_root
    root = shared_data_root()
    src = None if root is None else root / 'ct_volumes' / 'totalsegmentator'
    if src is None or not src.is_dir():
        pytest.skip('real CT not available ($MMLESION_SHARED_DATA/'
                    'ct_volumes/totalsegmentator; set MMLESION_SHARED_DATA)')
    img, lab = tmp_path / 'img', tmp_path / 'lab'
    img.mkdir()
    lab.mkdir()
    os.symlink(src / 'example_ct_sm.nii.gz', img / 'a.nii.gz')
    os.symlink(src / 'example_seg.nii.gz', lab / 'a.nii.gz')
    _, data = _run(tmp_path, str(img), masks=str(lab), instances=True)
    seg = load_ct_volume(src / 'example_seg.nii.gz',
                         scan_checks=dict(force_ct=True),
                         options=VolumeOptions(dtype=None)).array
    assert len(data['volumes'][0]['annotations']) == len(
        np.unique(seg[seg > 0])) > 1
    # the DICOM series (a folder of links) with a bone mask on its grid
    os.remove(img / 'a.nii.gz')
    os.remove(lab / 'a.nii.gz')
    os.symlink(src / 'example_ct_dicom', img / 'b')
    ct = load_ct_volume(src / 'example_ct_dicom')
    bone = (ct.array > 300).astype(np.uint8)
    mask = sitk.GetImageFromArray(bone)
    mask.CopyInformation(ct.to_sitk())
    sitk.WriteImage(mask, str(lab / 'b.nii.gz'))
    _, data = _run(tmp_path, str(img), 'b.json', masks=str(lab))
    assert [a['bbox'] for a in data['volumes'][0]['annotations']] == [
        c['bbox'] for c in mask_to_boxes_3d(bone, ct.spacing_zyx)]


def test_clinic_recist_sheet_through_columns(tmp_path, capsys):
    """A clinic's RECIST sheet (its own headers) converts with one
    --columns option, echoed in one line: its patient column groups the
    scans (names that show no patient), the measured slice (0-based along
    the file's z axis, here of a scan stored head first) is the key slice,
    and the box is long x short axis, or that of the axes' end points."""
    flip = (1, 0, 0, 0, 1, 0, 0, 0, -1)  # ct_002 stored head first
    for name, direction, origin in (('ct_001', None, (0, 0, 0)),
                                    ('ct_002', flip, (0, 0, 33)),
                                    ('ct_003', None, (0, 0, 0)),
                                    ('ct_004', None, (0, 0, 0))):
        write_volume(str(tmp_path / 'img' / f'{name}.nii.gz'),
                     _ct((12, 48, 48)), (1., 1., 3.), origin, direction)
    sheet = tmp_path / 'recist.csv'
    sheet.write_text(
        'case,patient,x_mm,y_mm,z_mm,long_axis_mm,short_axis_mm,slice_index\n'
        'ct_001,A,20,24,16.5,27,6,5\n'   # centre between slices 5 and 6
        'ct_002,A,20,24,24,10,8,3\n'     # file slice 3: world z 24
        'ct_003,B,30,30,12,12,9,\n'      # no measured slice: the centre's
        'ct_004,B,20,20,9,15,10,3\n')
    tool = load_tool('dataset_converters/convert_dataset.py')
    columns = ['--columns', 'volume_id=case', 'patient_id=patient',
               'coordX=x_mm', 'coordY=y_mm', 'coordZ=z_mm']
    base = [str(tmp_path / 'img'), '--boxes', str(sheet), '--box-format',
            'recist', '--val-fraction', '0', '--test-fraction', '0.5',
            '--num-slices', '3', '--interval-mm', '3']
    # without the mapping: refused naming the columns it lacks
    assert tool.main(base + ['--out', str(tmp_path / 'x.json')]) == 1
    assert "lacks the column(s) ['volume_id', 'coordX'" in \
        capsys.readouterr().err
    assert tool.main(base + columns + [
        '--out', str(tmp_path / 'r.json'), '--export-2d',
        str(tmp_path / 'r2d')]) == 0
    out = capsys.readouterr().out
    assert (f'{sheet}: columns volume_id=case, coordX=x_mm, coordY=y_mm, '
            'coordZ=z_mm, long_axis_mm, short_axis_mm, patient_id=patient, '
            'slice_index') in out
    assert 'patients: 2 patients in 4 scans, by patient_id of the box ' \
        'CSV (4 scans)' in out
    data = json.load(open(tmp_path / 'r.json'))
    side = {v['id']: (v['patient_id'], v['split']) for v in data['volumes']}
    assert side['ct_001'] == side['ct_002'][:1] + (side['ct_001'][1], )
    assert side['ct_001'][1] == side['ct_002'][1] != side['ct_003'][1] == \
        side['ct_004'][1] and side['ct_003'][0] == 'B'
    series = {s['volume_id']: s for s in json.load(
        open(tmp_path / 'r2d' / 'series_map.json'))}
    keys = {k: [les['key_slice'] - 1 for les in s['lesions']]
            for k, s in series.items()}
    # canonical slices: the measured ones (ct_002's file slice 3 is world
    # z 24, its canonical slice 8), ct_003 the centre's (z 12 mm: 4)
    assert keys == {'ct_001': [5], 'ct_002': [8], 'ct_003': [4],
                    'ct_004': [3]}
    (box, ) = [les['bbox'] for les in series['ct_001']['lesions']]
    assert (box[2] - box[0] + 1, box[3] - box[1] + 1) == (27., 6.)  # px
    # the axes' end points (an oblique lesion): the box of the four points
    sheet.write_text(
        'case,patient,x_mm,y_mm,z_mm,long_axis_mm,short_axis_mm,axes\n'
        'ct_001,A,20,20,15,28.3,14.1,"10 10 30 30 25 15 15 25"\n')
    assert tool.main(base + columns + [
        'measurement_coordinates=axes', '--out', str(tmp_path / 'e.json'),
        '--export-2d', str(tmp_path / 'e2d')]) == 0
    (box, ) = json.load(open(tmp_path / 'e2d' / 'series_map.json'))[0][
        'lesions']
    assert box == dict(key_slice=6, bbox=[11.5, 11.5, 30.5, 30.5])  # 20 px


def test_held_out_patients_listed_and_a_sub_folder_said(tmp_path, logged):
    """Every scan's split and patient are written beside the annotation
    file in the split-file format (taken back by --split-file: the same
    split), the held-out patients said in one line; an annotation file
    written into a folder that does not hold its scans is said in one line
    that gives the fix."""
    scans, masks = _folder(tmp_path / 'data', n=8)
    _, data = _run(tmp_path / 'data', scans, masks=masks, val_fraction=.25,
                   test_fraction=.25)
    table = (tmp_path / 'data' / 'a.split.csv').read_text().splitlines()
    side = {v['id']: v for v in data['volumes']}
    names = {1: 'train', 2: 'val', 3: 'test'}
    assert table[0] == 'volume_id,split,patient_id'
    assert sorted(table[1:]) == sorted(
        f"{v['id']},{names[v['split']]},{v['patient_id']}"
        for v in side.values())
    test = sorted({v['patient_id'] for v in side.values() if v['split'] == 3})
    val = sorted({v['patient_id'] for v in side.values() if v['split'] == 2})
    assert (f"held-out patients: test: {', '.join(test)}; val: "
            f"{', '.join(val)} (every scan's split and patient: "
            f'{tmp_path}/data/a.split.csv)') in logged
    assert not [m for m in logged if 'does not hold its scans' in m]
    _, again = _run(tmp_path / 'data', scans, 'b.json', masks=masks,
                    split_file=str(tmp_path / 'data' / 'a.split.csv'))
    assert {v['id']: v['split'] for v in again['volumes']} == {
        k: v['split'] for k, v in side.items()}
    # the annotation file in a sub-folder of the data: said, with the fix
    logged.clear()
    _run(tmp_path / 'data' / 'sub', scans, masks=masks)
    (line, ) = [m for m in logged if 'does not hold its scans' in m]
    assert line.startswith(
        f'{tmp_path}/data/sub/a.json: written into a folder that does not '
        "hold its scans (8 of 8 scan paths leave it, e.g. "
        "'../img/p0_scan0.nii.gz')") and 'e.g. DIR/volumes.json' in line


def test_columns_and_recist_fields_refused_in_one_line(tmp_path):
    """--columns names no layout column, or a header the sheet lacks; a
    measured slice that is not a number; end points that are not 8
    numbers; two patients for one scan: one line naming file and field."""
    from mmlesion.apps.own_data.scan_cases import (read_box_table,
                                                   rows_patient)
    sheet = tmp_path / 's.csv'
    sheet.write_text('case,x,y,z,long_axis_mm,short_axis_mm,slice,who\n'
                     'a,1,2,3,10,5,4,P1\na,1,2,9,10,5,x,P2\n')
    cols = dict(volume_id='case', coordX='x', coordY='y', coordZ='z',
                slice_index='slice', patient_id='who')
    with pytest.raises(ValueError, match=r"^--columns: \['size'\] is not a "
                       'column of the recist layout'):
        read_box_table(str(sheet), 'recist', columns=dict(cols, size='x'))
    with pytest.raises(ValueError, match=rf'^{sheet} line 1: the header .* '
                       'lacks the column\\(s\\) of --columns '
                       'measurement_coordinates=axes$'):
        read_box_table(str(sheet), 'recist', columns=dict(
            cols, measurement_coordinates='axes'))
    with pytest.raises(ValueError, match=rf"^{sheet} line 3: field "
                       "'slice_index' must be a whole slice number, got 'x'"):
        read_box_table(str(sheet), 'recist', columns=cols)
    sheet.write_text(sheet.read_text().replace('5,x,P2', '5,5,P2'))
    rows = read_box_table(str(sheet), 'recist', columns=cols)['a']
    assert [(r.slice_index, r.patient, r.axes_mm) for r in rows] == [
        (4, 'P1', (10., 5.)), (5, 'P2', (10., 5.))]
    with pytest.raises(ValueError, match=r"finding 2 .*field 'patient_id' "
                       r"'P2', but .*finding 1 .* names 'P1'"):
        rows_patient('a', rows)
    sheet.write_text('volume_id,coordX,coordY,coordZ,long_axis_mm,'
                     'short_axis_mm,measurement_coordinates\n'
                     'a,1,2,3,10,5,"1 2 3"\n')
    with pytest.raises(ValueError, match=rf"^{sheet} line 2: field "
                       "'measurement_coordinates' must be 8 numbers"):
        read_box_table(str(sheet), 'recist')
