# Copyright (c) mmlesion contributors. All rights reserved.
"""Inference and training load nothing of the paper harness
(``mmlesion.apps.reproduce``): what a one-scan whole-scan run
(``tools/infer_volume.py CONFIG CKPT SCAN``) and ``tools/train.py`` /
``tools/test.py`` import before the model is built, each in a process
of its own that had imported no module of ``mmlesion`` (a fork of a bare
zygote: :mod:`tests.helpers.zygote`), read from ``sys.modules``.
``import mmlesion`` loads no application at all."""
import json
import os
import textwrap
from typing import List

import pytest

from mmlesion.testing import repo_root
from tests.helpers.zygote import Zygote

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


@pytest.fixture(scope='module')
def bare_zygote():
    zygote = Zygote(bare=True)
    yield zygote
    zygote.close()


def loaded_modules(zygote: Zygote, code: str, work: str) -> List[str]:
    """The ``mmlesion`` modules in ``sys.modules`` after ``code`` ran at
    the repository root (``WORK``: a scratch folder) in a fork of the bare
    ``zygote``, which imported none."""
    script = os.path.join(work, f'probe_{len(os.listdir(work))}.py')
    with open(script, 'w') as f:
        f.write(f'WORK = {work!r}\n' + textwrap.dedent(code) +
                '\nimport json, sys\n'
                "print(json.dumps(sorted(m for m in sys.modules "
                "if m.startswith('mmlesion'))))\n")
    out, err = script + '.out', script + '.err'
    rc, timed_out = zygote.run([script], str(repo_root()), out,
                               err=err, timeout=300)
    assert rc == 0 and not timed_out, open(err).read()[-3000:]
    with open(out) as f:
        return json.loads(f.read().strip().splitlines()[-1])


@pytest.mark.parametrize('path', sorted(PATHS))
def test_the_path_loads_no_paper_harness(bare_zygote, path, tmp_path):
    loaded = loaded_modules(bare_zygote, PATHS[path], str(tmp_path))
    assert 'mmlesion.apis.whole_scan' in loaded or path != (
        'one-scan whole-scan run')
    assert [m for m in loaded
            if m == HARNESS or m.startswith(HARNESS + '.')] == []
    if path == 'import mmlesion':
        assert [m for m in loaded if m.startswith('mmlesion.apps')] == []
    else:  # the methods' registries were asked (their homes imported)
        assert 'mmlesion.methods.lens' in loaded


def test_a_loaded_harness_module_is_seen(bare_zygote, tmp_path):
    """The check sees a module the code loads (it can fail), and nothing
    the bare zygote loaded before."""
    assert loaded_modules(bare_zygote, 'pass', str(tmp_path)) == []
    loaded = loaded_modules(bare_zygote,
                            'import mmlesion.apps.reproduce.variants',
                            str(tmp_path))
    assert 'mmlesion.apps.reproduce.variants' in loaded


def test_a_config_importing_one_method_loads_no_other(bare_zygote, tmp_path):
    """``custom_imports=['mmlesion', 'mmlesion.methods.lens']`` loads LENS
    and no other method home; :func:`import_methods` loads every one."""
    def homes(code):
        return {m.split('.')[2]
                for m in loaded_modules(bare_zygote, code, str(tmp_path))
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
