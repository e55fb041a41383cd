# Copyright (c) mmlesion contributors. All rights reserved.
"""Label maps that are not labels (issue 50, item 3): a float label map
with values between the classes is refused naming the file, the dtype and
how many voxels are not whole numbers; whole numbers stored as float are
labels (a warning)."""
import numpy as np
import pytest

from mmlesion.apps.own_data import common, mask_boxes
from mmlesion.apps.own_data.common import MaskLesions, convert_mask_case
from mmlesion.testing.volume_files import write_volume


def _case(tmp_path, seg):
    img = np.full(seg.shape, -100, np.int16)
    img[:, 0] = -1000  # air: a CT in HU
    image = write_volume(str(tmp_path / 'imaging.nii.gz'), img)
    mask = write_volume(str(tmp_path / 'segmentation.nii.gz'), seg)
    return image, mask


def _labels(shape=(8, 16, 16)):
    seg = np.zeros(shape, np.uint8)
    seg[2:6, 3:12, 3:12] = 1  # organ
    seg[3:5, 5:8, 5:8] = 2  # tumour
    return seg


@pytest.fixture
def warnings(monkeypatch):
    logged = []
    monkeypatch.setattr(mask_boxes, 'print_log',
                        lambda msg, **kw: logged.append((msg, kw)))
    return logged


def test_interpolated_float_label_map_is_refused(tmp_path):
    seg = _labels().astype(np.float32)
    seg[3:5, 4, 5:8] = 1.5  # interpolated between organ and tumour
    seg[3:5, 8, 5:8] = 0.25
    image, mask = _case(tmp_path, seg)
    with pytest.raises(ValueError) as info:
        convert_mask_case(image, mask, str(tmp_path / 'a.json'), 'case',
                          MaskLesions((2, )))
    msg = str(info.value)
    assert mask in msg and '\n' not in msg, msg
    assert 'float32' in msg and '12 of 2048 voxels' in msg, msg
    assert 'not whole numbers' in msg, msg


def test_whole_float_label_map_is_labels_with_a_warning(tmp_path, warnings):
    seg = _labels()
    image, mask = _case(tmp_path / 'u8', seg)
    want = convert_mask_case(image, mask, str(tmp_path / 'a.json'), 'c',
                             MaskLesions((2, )))
    assert not warnings
    image, mask = _case(tmp_path / 'f32', seg.astype(np.float32))
    got = convert_mask_case(image, mask, str(tmp_path / 'a.json'), 'c',
                            MaskLesions((2, )))
    assert [les['bbox'] for les in got.lesions] == \
        [les['bbox'] for les in want.lesions] != []
    assert len(warnings) == 1 and mask in warnings[0][0], warnings
    assert 'float32' in warnings[0][0]


def test_check_label_map_accepts_integer_maps(warnings):
    mask_boxes.check_label_map('m.nii', _labels().astype(np.int16))
    assert not warnings
    assert common.check_label_map is mask_boxes.check_label_map
