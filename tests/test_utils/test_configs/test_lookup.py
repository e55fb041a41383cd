# Copyright (c) mmlesion contributors. All rights reserved.
"""``mmlesion::`` bases from a user's own folder, under the install the
suite runs in (the README's editable install: ``pip install -e .``); the
wheel install is covered in ``tests/test_tools/test_mmdet_stock_tools.py``.
"""
import os
import subprocess
import sys
from pathlib import Path

import mmlesion
from mmlesion.utils.configs.lookup import (_PKG_DIR, _with_mmlesion_path,
                                           lesion_config_path)

DEMO = 'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'


def test_lookup_answers_mmlesion_with_the_imported_package():
    seen = []

    def find(package):
        seen.append(package)
        return f'/site/{package}'

    patched = _with_mmlesion_path(find)
    assert patched('mmlesion') == str(_PKG_DIR) == str(
        Path(mmlesion.__file__).resolve().parent)
    assert patched('mmdet') == '/site/mmdet'
    assert seen == ['mmdet']
    # applied twice (mmlesion imported again after a reload): one wrapper
    assert _with_mmlesion_path(patched) is patched


def test_scoped_base_from_another_folder(tmp_path):
    """The user's config lives outside the clone and the command runs
    there: before the fix, ``FileNotFoundError .../site-packages/mmlesion/
    .mim/model-index.yml`` under an editable install."""
    user = tmp_path / 'my_project'
    user.mkdir()
    (user / 'my_detector.py').write_text(
        f"_base_ = 'mmlesion::{DEMO}'\n"
        'model = dict(roi_head=dict(bbox_head=dict(num_classes=2)))\n')
    code = ('import mmlesion\n'
            'from mmengine.config import Config\n'
            "cfg = Config.fromfile('my_detector.py')\n"
            'print(cfg.model.type, cfg.model.roi_head.bbox_head.num_classes,'
            ' cfg.model.backbone.depth)\n')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    run = subprocess.run([sys.executable, '-c', code], cwd=user, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == ['FasterRCNN', '2', '18']
    # the base is the very file the clone / install carries
    assert Path(lesion_config_path(DEMO)).is_file()
