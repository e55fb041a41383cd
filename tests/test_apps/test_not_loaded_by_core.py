# Copyright (c) mmlesion contributors. All rights reserved.
"""Inference and training load nothing of the paper harness
(``mmlesion.apps.reproduce``): what a one-scan whole-scan run
(``tools/infer_volume.py CONFIG CKPT SCAN``) and ``tools/train.py`` /
``tools/test.py`` import before the model is built, each in a fresh
interpreter, read from ``sys.modules``. ``import mmlesion`` loads no
application at all."""
import json
import subprocess
import sys
import textwrap
from typing import List

import pytest

from mmlesion.testing import repo_root

CONFIG = 'configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'
#: What must stay unloaded on every path below.
HARNESS = 'mmlesion.apps.reproduce'

#: Each path up to the model's build, as the tool runs it.
PATHS = {
    'import mmlesion': '''
        import mmlesion
    ''',
    'one-scan whole-scan run': f'''
        from tests.helpers.tool_modules import load_tool
        tool = load_tool('infer_volume.py')
        args = tool.parse_args(['{CONFIG}', 'x.pth', 'scan.nii.gz',
                                '--out-dir', 'out'])
        tool._run_settings(args)  # the methods' whole-scan steps
        from mmlesion.apis.whole_scan import run_volume_inference
    ''',
    'training': f'''
        from mmlesion_cli.train_args import build_train_cfg
        from tests.helpers.tool_modules import load_tool
        tool = load_tool('train.py')
        args = tool.parse_args(['{CONFIG}', '--work-dir', WORK])
        cfg = build_train_cfg(args)  # the whole-config check
        from mmlesion.datasets.data_layout import warn_data_layout
    ''',
    'test': f'''
        import sys
        from tests.helpers.tool_modules import load_tool
        tool = load_tool('test.py')
        ckpt = WORK + '/x.pth'
        open(ckpt, 'wb').close()
        sys.argv = ['test.py', '{CONFIG}', ckpt, '--work-dir', WORK]
        tool.build_cfg(tool.parse_args())  # the whole-config check
    ''',
}


def loaded_modules(code: str, work: str) -> List[str]:
    """The ``mmlesion`` modules in ``sys.modules`` after ``code`` ran in a
    fresh interpreter at the repository root (``WORK``: a scratch
    folder)."""
    script = (f'WORK = {work!r}\n' + textwrap.dedent(code) +
              '\nimport json, sys\n'
              "print(json.dumps(sorted(m for m in sys.modules "
              "if m.startswith('mmlesion'))))\n")
    out = subprocess.run([sys.executable, '-c', script], cwd=repo_root(),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize('path', sorted(PATHS))
def test_the_path_loads_no_paper_harness(path, tmp_path):
    loaded = loaded_modules(PATHS[path], str(tmp_path))
    assert 'mmlesion.apis.whole_scan' in loaded or path != (
        'one-scan whole-scan run')
    assert [m for m in loaded
            if m == HARNESS or m.startswith(HARNESS + '.')] == []
    if path == 'import mmlesion':
        assert [m for m in loaded if m.startswith('mmlesion.apps')] == []
    else:  # the methods' registries were asked (their homes imported)
        assert 'mmlesion.methods.lens' in loaded


def test_a_loaded_harness_module_is_seen(tmp_path):
    """The check sees a module the code loads (it can fail)."""
    loaded = loaded_modules('import mmlesion.apps.reproduce.variants',
                            str(tmp_path))
    assert 'mmlesion.apps.reproduce.variants' in loaded


def test_a_config_importing_one_method_loads_no_other(tmp_path):
    """``custom_imports=['mmlesion', 'mmlesion.methods.lens']`` loads LENS
    and no other method home; :func:`import_methods` loads every one."""
    def homes(code):
        return {m.split('.')[2] for m in loaded_modules(code, str(tmp_path))
                if m.startswith('mmlesion.methods.')}

    assert homes('''
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(['mmlesion', 'mmlesion.methods.lens'])
    ''') == {'lens'}
    every = {p.parent.name
             for p in (repo_root() / 'mmlesion/methods').glob('*/__init__.py')}
    assert len(every) >= 4
    assert homes('''
        from mmlesion.methods import import_methods
        import_methods()
    ''') == every
