# Copyright (c) mmlesion contributors. All rights reserved.
"""ElixirNet's rows that ``test_e2e_elixirnet.py`` and
``tests/test_tools/test_reproduce.py`` leave out, end to end at tiny size
on the demo DeepLesion set (:data:`tests.helpers.elixirnet_tiny.TINY`),
each distinct training once: the tables share one ``--work-dir``, where a
stage is named by its command, so a row whose training another row ran
only tests (Table 1 is Table 2's IoU half: nothing runs).

The C4 models have no FPN and a ResNet stage as RoI head (the baseline's
``shared_head``; ElixirNet's C4 puts the ALB head on the stage-3 features):
their shrinking options are their own (ResNet-18's channels)."""
import pytest

from tests.helpers import elixirnet_tiny
from tests.helpers.elixirnet_tiny import ROIS, deformable
from tests.helpers.measured_cells import measured_rows
from tests.helpers.tool_modules import load_tool

# Stages run as forks of a process that imported mmdet once (conftest).
pytestmark = pytest.mark.usefixtures('tools_forked')

#: the rows' options (every row tests ``@last``)
TINY = elixirnet_tiny.TINY_LAST

#: :data:`TINY` for the C4 models: no neck; ResNet-18's stage 3 gives 256
#: channels
_C4 = [o for o in TINY if not o.startswith('model.neck')] + ROIS + [
    'model.rpn_head.in_channels=256',
    'model.roi_head.bbox_roi_extractor.out_channels=256']
#: Table 1's models and the options that shrink them: the Faster R-CNN C4
#: baseline (ResNet-18's stage 4 as its RoI head), ElixirNet C4 (the ALB
#: head on the stage-3 features), ElixirNet on the FPN (Table 5's row
#: "ElixirNet" too), the Deformv2 baseline and ElixirNet w Deformv2 (a
#: narrow ResNet-50: :func:`~tests.helpers.elixirnet_tiny.deformable`)
TABLE1_GROUPS = {
    'c4': (['frcnn'], _C4 + ['model.roi_head.shared_head.depth=18',
                             'model.roi_head.shared_head.init_cfg=None',
                             'model.roi_head.bbox_head.in_channels=512']),
    'elixirnet_c4': (['elixirnet'],
                     _C4 + ['model.roi_head.bbox_head.in_channels=256']),
    'elixirnet_fpn': (['elixirnet_fpn'], TINY + ROIS),
    'deformv2': (['deformv2', 'elixirnet_deformv2'],
                 deformable(TINY + ROIS)),
}


def _run(tool, work, root, table, rows, options, trainings, capsys):
    assert tool.main([table, '--rows', *rows, '--seeds', '0', '--work-dir',
                      str(work), '--data-root', f'{root}/', '--cfg-options',
                      *options]) == 0
    assert capsys.readouterr().out.count('tools/train.py') == trainings
    return measured_rows(work, rows)


@pytest.mark.parametrize('group', sorted(TABLE1_GROUPS))
def test_tables_1_and_2_rows(group, tiny_demo_root, tmp_path, capsys):
    """Table 2's rows of Table 1's models (the FPN's: ``test_e2e_elixirnet.
    py``), each model trained once and tested with IoU and with IoBB; then
    Table 1's rows, which are the IoU tests: nothing runs."""
    tool = load_tool('reproduce.py')
    models, options = TABLE1_GROUPS[group]
    rows = _run(tool, tmp_path, tiny_demo_root, 'elixirnet/table2',
                [f'{m}_{o}' for m in models for o in ('iou', 'iobb')],
                options, len(models), capsys)
    for m in models:  # a box's IoBB is never below its IoU
        assert (rows[f'{m}_iobb']['ours']['sens@4']['mean'] >=
                rows[f'{m}_iou']['ours']['sens@4']['mean'])
    _run(tool, tmp_path, tiny_demo_root, 'elixirnet/table1', models,
         options, 0, capsys)
    if group == 'elixirnet_fpn':  # Table 5's last 3-slice row: the same
        _run(tool, tmp_path, tiny_demo_root, 'elixirnet/table5',
             ['elixirnet'], options, 0, capsys)


#: Table 5's rows not run elsewhere (FPN, TRPN: ``tests/test_tools/
#: test_reproduce.py``; ElixirNet: above), one training each
TABLE5_ROWS = ('trpn_noaux', 'alb', 'alb_rtm', 'focal_rpn', 'trpn_alb_9slice',
               'elixirnet_9slice')


@pytest.mark.parametrize('row', TABLE5_ROWS)
def test_table5_row(row, tiny_demo_root, tmp_path, capsys):
    _run(load_tool('reproduce.py'), tmp_path, tiny_demo_root,
         'elixirnet/table5', [row], TINY + ROIS, 1, capsys)


def test_table5_trpn_alb_and_table4(tiny_demo_root, tmp_path, capsys):
    """Table 5's TRPN + ALB, then Table 4's ElixirNet rows, which start
    from that training (found done: its checkpoint is the last epoch) and
    fine-tune on the typed val split, each its own config."""
    tool = load_tool('reproduce.py')
    _run(tool, tmp_path, tiny_demo_root, 'elixirnet/table5', ['trpn_alb'],
         TINY + ROIS, 1, capsys)
    rows = ['elixirnet_wo_rtm', 'elixirnet']
    assert tool.main(['elixirnet/table4', '--rows', *rows, '--seeds', '0',
                      '--work-dir', str(tmp_path), '--data-root',
                      f'{tiny_demo_root}/', '--cfg-options', *TINY,
                      *ROIS]) == 0
    out = capsys.readouterr().out
    # the start resumed once (named train_start here: its last epoch is
    # there), then each row's fine-tuning
    assert out.count('tools/train.py') == 3
    measured_rows(tmp_path, rows)
