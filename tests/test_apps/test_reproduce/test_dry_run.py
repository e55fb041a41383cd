# Copyright (c) mmlesion contributors. All rights reserved.
"""The commands ``tools/reproduce.py --dry-run`` prints run when pasted: the
checkpoint a test stage names (``@last:DIR``, ``@best:DIR``) is read by the
shell when the line runs, giving the arguments the stage runs with
(:func:`~mmlesion.apps.reproduce.execute.resolve`)."""
import json
import os.path as osp
import shutil
import subprocess
import sys

import pytest

from mmlesion.apps.reproduce.dry_run import display_command
from mmlesion.apps.reproduce.execute import resolve
from mmlesion.apps.reproduce.plan import Stage


@pytest.mark.skipif(shutil.which('bash') is None, reason='needs bash')
def test_a_pasted_command_reads_the_checkpoint_the_stage_resolves(tmp_path):
    last = tmp_path / 'work dir' / 'seed_0'
    last.mkdir(parents=True)
    ckpt = last / 'epoch_2.pth'
    ckpt.write_text('')
    (last / 'last_checkpoint').write_text(f'{ckpt}\n')
    best = tmp_path / 'best'
    best.mkdir()
    (best / 'best_coco_bbox_mAP_epoch_3.pth').write_text('')
    argv = [sys.executable, '-c',
            'import json, sys; print(json.dumps(sys.argv[1:]))',
            'configs/x.py', f'@last:{last}', '--fpr-checkpoint',
            f'@best:{best}', '--out', str(tmp_path / 'o')]
    stage = Stage('test', argv)
    line = display_command(stage, str(tmp_path))
    assert '@last:' not in line and '@best:' not in line
    assert 'last_checkpoint' in line and "'work dir/seed_0'" in line
    pasted = subprocess.run(['bash', '-c', line], cwd=tmp_path, check=True,
                            capture_output=True, text=True).stdout
    # the same arguments, paths shown relative to the folder it runs from
    assert [osp.join(tmp_path, a) for a in json.loads(pasted)] == [
        osp.join(tmp_path, a) for a in resolve(argv)[3:]]
