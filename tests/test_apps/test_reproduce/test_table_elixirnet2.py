# Copyright (c) mmlesion contributors. All rights reserved.
"""``tools/reproduce.py elixirnet/table2`` as a plan: ElixirNet's Table 2,
every legible row of it (FRCNN on C4, FPN, Deformv2 and ElixirNet on each),
one training per model tested with IoU (Table 1's numbers) and IoBB."""
from mmlesion.apps.reproduce import PlanContext, build_rows
from mmlesion.apps.reproduce.paper_results import PAPER_RESULTS

RATES = ('0.5', '1', '2', '3', '4', '8', '16')
C4 = 'faster-rcnn_r50_c4_4xb2-1x_deeplesion-3slice'
ELIXIR_C4 = 'elixirnet-fig3geno_r50_c4_4xb2-1x_deeplesion-3slice'


def test_c4_rows_are_rows(tmp_path):
    ctx = PlanContext(str(tmp_path / 'w'))
    rows = {r.key: r for r in build_rows(
        'elixirnet/table2', ctx,
        ['frcnn_iou', 'frcnn_iobb', 'elixirnet_iou', 'elixirnet_iobb'], [0])}
    assert (rows['frcnn_iobb'].model, rows['elixirnet_iobb'].model) == (
        C4, ELIXIR_C4)
    assert rows['frcnn_iobb'].paper_name == f'{C4}@iobb'
    assert rows['frcnn_iou'].paper_name == C4  # Table 1's row
    # one training serves both overlaps
    assert rows['frcnn_iou'].stages[0].command == \
        rows['frcnn_iobb'].stages[0].command
    assert 'test_evaluator.overlap=iobb' in rows['frcnn_iobb'].stages[1].argv


def test_c4_iobb_numbers_derived_as_table1s():
    """Table 2 prints ElixirNet's row and its gains over FRCNN; FRCNN's
    row is ElixirNet's minus the gain, as Table 1's FRCNN row is."""
    top = PAPER_RESULTS[f'{ELIXIR_C4}@iobb']
    low = PAPER_RESULTS[f'{C4}@iobb']
    assert [top[f'sens@{r}'] for r in RATES] == [
        63.36, 73.21, 81.38, 85.06, 86.53, 87.5, 87.5]
    gains = (5.77, 4.75, 4.02, 3.10, 4.10, 5.07, 5.07)
    for rate, gain in zip(RATES, gains):
        assert abs(top[f'sens@{rate}'] - gain - low[f'sens@{rate}']) < 1e-6
    assert 'bbox_mAP' not in top and 'bbox_mAP' not in low
