# Copyright (c) mmlesion contributors. All rights reserved.
"""``load_ct_volume`` on the DICOM attributes that change HU or position
beyond the plane and rescale tags, against the standard's rules
(:mod:`tests.helpers.dicom_reference` writes the files with pydicom).

* A DICOMDIR export read in a fresh interpreter: nothing the tests import
  (``pydicom.fileset`` for one) can make it work.
"""
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from mmlesion.datasets.volumes import CTVolume
from mmlesion.testing import repo_root
from tests.helpers import dicom_reader_checks as checks
from tests.helpers import dicom_reference as ref

N = 6  # slices of a variant


@pytest.fixture(scope='module')
def stored():
    return checks.real_stored_or_skip(N, 32)


#: Run in a new interpreter: what ``import mmlesion.datasets.volumes``
#: loaded of pydicom, then the volume read from argv[1] saved to argv[2].
_FRESH = """
import sys, json
import numpy as np
from mmlesion.datasets.volumes import load_ct_volume
before = sorted(m for m in sys.modules if m.startswith('pydicom.fileset'))
vol = load_ct_volume(sys.argv[1])
np.save(sys.argv[2], vol.array)
print(json.dumps(dict(before=before, spacing=vol.spacing_zyx,
                      origin=vol.origin_xyz,
                      direction=np.asarray(vol.direction).tolist(),
                      folder=vol.meta['series_folder'])))
"""


def test_dicomdir_export_in_a_fresh_interpreter(stored, tmp_path):
    """The export's root read by a new Python process that imported only
    the reader: the reference voxels at their world positions."""
    series = ref.write_series(str(tmp_path / 'a'), stored,
                              ref.stack_planes(N))
    root = str(tmp_path / 'export')
    written = ref.write_dicomdir(root, series)
    out = str(tmp_path / 'array.npy')
    run = subprocess.run([sys.executable, '-c', _FRESH, root, out],
                         capture_output=True, text=True, timeout=300,
                         cwd=str(repo_root()))
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    # the process had not loaded pydicom.fileset before reading
    assert got['before'] == []
    assert got['folder'] == osp.dirname(written[0])
    vol = CTVolume(np.load(out), got['spacing'], got['origin'],
                   np.asarray(got['direction']))
    ref.assert_matches_reference(vol, ref.reference_frames(sorted(written)))
