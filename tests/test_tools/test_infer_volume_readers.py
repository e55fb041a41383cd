# Copyright (c) mmlesion contributors. All rights reserved.
"""Every reader reached as a user runs it: ``tools/infer_volume.py`` in a
process of its own (forked from the suite's zygote, which imported only
the library and its stack: nothing a test imported is there), on one scan
written as a DICOMDIR export, a DICOM series folder, an enhanced DICOM
file, a NIfTI-1 ``.hdr`` / ``.img`` pair, a ``.nii.gz``, a MetaImage and
a NRRD. The same voxels at the same world positions give the same
findings: every format's findings equal the ``.nii.gz``'s."""
import csv
import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from mmlesion.datasets.volumes import load_ct_volume
from mmlesion.testing import repo_root
from tests.helpers import dicom_reference as ref
from tests.helpers.volume_demo import DEMO_CFG, scans_and_random_checkpoint

def _formats(hu: np.ndarray, spacing_zyx, origin_xyz, root) -> dict:
    """The scan in every format: name -> path (all the same voxels in the
    same place)."""
    sz, sy, sx = spacing_zyx
    img = sitk.GetImageFromArray(hu.astype(np.int16))
    img.SetSpacing((sx, sy, sz))
    img.SetOrigin(tuple(origin_xyz))
    out = {}
    for name, ext in (('nifti', '.nii.gz'), ('meta', '.mhd'),
                      ('nrrd', '.nrrd')):
        out[name] = str(root / (name + ext))
        sitk.WriteImage(img, out[name])
    ras = np.diag([-sx, -sy, sz, 1.])
    ras[:3, 3] = [-origin_xyz[0], -origin_xyz[1], origin_xyz[2]]
    pair = nib.Nifti1Pair(np.transpose(hu, (2, 1, 0)).astype(np.int16), ras)
    pair.header.set_sform(ras, 1)
    pair.header.set_qform(ras, 1)
    out['pair'] = str(root / 'pair.hdr')
    nib.save(pair, out['pair'])
    stored = (hu + 1024).astype(np.uint16)
    planes = ref.stack_planes(len(hu), origin=origin_xyz, step=sz,
                              spacing=(sy, sx))
    # the patient module's type 2 attributes, which the SR writer copies
    series = ref.write_series(str(root / 'series'), stored, planes,
                              extra=dict(PatientBirthDate='',
                                         PatientSex=''))
    out['series'] = str(root / 'series')
    ref.write_dicomdir(str(root / 'export'), series)
    out['export'] = str(root / 'export')
    out['enhanced'] = ref.write_enhanced(str(root / 'enhanced.dcm'),
                                         stored, planes)
    return out


def test_every_reader_through_the_tool(tmp_path, tmp_path_factory,
                                      tools_forked):
    (scan, ), ckpt = scans_and_random_checkpoint(tmp_path_factory)
    vol = load_ct_volume(scan)
    hu = np.round(vol.array)
    paths = _formats(hu, vol.spacing_zyx, vol.origin_xyz, tmp_path)
    listing = tmp_path / 'scans.txt'
    listing.write_text(''.join(p + '\n' for p in paths.values()))
    out = tmp_path / 'out'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    run = subprocess.run(
        [sys.executable, str(repo_root() / 'tools' / 'infer_volume.py'),
         str(repo_root() / 'configs' / DEMO_CFG), str(ckpt),
         '--scan-list', str(listing), '--out-dir', str(out),
         '--score-thr', '0.3', '--max-pictures', '0'],
        env=env, cwd=str(repo_root()), capture_output=True, text=True,
        timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    with open(out / 'scans.csv', newline='') as f:
        rows = {r['folder']: r for r in csv.DictReader(f)}
    assert sorted(rows) == sorted(
        os.path.basename(p).split('.')[0] for p in paths.values())
    assert {r['status'] for r in rows.values()} == {'done'}, rows

    def findings(folder):
        record = json.loads((out / folder / 'findings.json').read_text())
        return [(round(f['score'], 4), np.round(f['center_world'], 2))
                for f in record['findings']]

    want = findings('nifti')
    assert want  # random weights find plenty: the comparison means something
    for folder in rows:
        got = findings(folder)
        assert len(got) == len(want), folder
        for (s, c), (s0, c0) in zip(got, want):
            assert s == s0 and np.allclose(c, c0, atol=0.02), (folder, s,
                                                                c, s0, c0)
