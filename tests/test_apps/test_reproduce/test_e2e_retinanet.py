# Copyright (c) mmlesion contributors. All rights reserved.
"""Improved RetinaNet's Table 1 rows "+ dense supervision" and "+ attention
gate" end to end at tiny size on the demo DeepLesion set (the first two
rows: ``tests/test_tools/test_reproduce.py``): each row's own anchor search
by differential evolution on the validation split, for its own model,
then its training and test. The full-size VGG-19 configs are shrunk by
appended options: VGG-11, the same stages and channels with fewer
convolutions, the slices resized to 128 px where these configs resize."""
import pytest

from tests.helpers.elixirnet_tiny import TINY
from tests.helpers.measured_cells import measured_rows
from tests.helpers.tool_modules import load_tool

# Stages run as forks of a process that imported mmdet once (conftest).
pytestmark = pytest.mark.usefixtures('tools_forked')

#: the improved models' training pipeline resizes at step 5 (after the
#: RECIST points and their masks), not 3; VGG's full-width convolutions
#: at 128 px (a quarter of the synthetic slices' pixels)
TINY_VGG = [o.replace('train_dataloader.dataset.pipeline.3.',
                      'train_dataloader.dataset.pipeline.5.').replace(
                          '(256,256)', '(128,128)')
            for o in TINY if not o.startswith(
                ('model.backbone.depth', 'model.neck.in_channels'))] + [
                    'model.backbone.depth=11']


def test_dense_and_attention_rows(tiny_demo_root, tmp_path, capsys):
    rows = ['dense', 'attention']
    assert load_tool('reproduce.py').main([
        'retinanet_lesion/table1', '--rows', *rows, '--seeds', '0',
        '--work-dir', str(tmp_path), '--data-root', f'{tiny_demo_root}/',
        '--cfg-options', *TINY_VGG]) == 0
    out = capsys.readouterr().out
    assert out.count('optimize_anchors.py') == 2  # one per model
    assert out.count('tools/train.py') == 2
    searched = sorted(p.name for p in (tmp_path / 'anchors').glob('*.py'))
    assert searched == [
        'improved-retinanet_vgg19_densefpn-ag-valanchors_1xb4-adam-'
        'plateau-50e_deeplesion.py', 'improved-retinanet_vgg19_densefpn-'
        'valanchors_1xb4-adam-plateau-50e_deeplesion.py']
    measured_rows(tmp_path, rows)
