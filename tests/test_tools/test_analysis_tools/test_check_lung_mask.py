# Copyright (c) mmlesion contributors. All rights reserved.
"""tools/analysis_tools/check_lung_mask.py on the real TotalSegmentator CT."""
import importlib.util

import pytest

from mmlesion.testing import repo_root, shared_data_root

_SHARED = shared_data_root()
TOTALSEG = None if _SHARED is None else \
    _SHARED / 'ct_volumes' / 'totalsegmentator'


@pytest.mark.skipif(TOTALSEG is None
                    or not (TOTALSEG / 'example_seg.nii.gz').exists(),
                    reason='shared TotalSegmentator CT not available')
def test_check_lung_mask_tool(capsys):
    path = repo_root() / 'tools/analysis_tools/check_lung_mask.py'
    spec = importlib.util.spec_from_file_location('check_lung_mask', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    res = tool.main([str(TOTALSEG / 'example_ct_sm.nii.gz'),
                     str(TOTALSEG / 'example_seg.nii.gz'), '--labels', '10',
                     '11', '12', '13', '14'])['native']
    assert res['dice'] > 0.9
    (m10, _, in10), (m15, _, in15) = res['crops']
    assert (m10, m15) == (10., 15.)
    assert in10 >= 0.995 * res['ref_voxels'] and in15 == res['ref_voxels']
    assert 'Dice 0.9' in capsys.readouterr().out
