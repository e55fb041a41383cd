# Copyright (c) mmlesion contributors. All rights reserved.
"""merge_luna16_candidates.py: reads two CSVs, writes the merged one
atomically, never replaces a file without --overwrite."""
import pytest

from mmlesion.evaluation.functional import read_candidates_csv
from tests.helpers.tool_modules import load_tool

HEADER = 'seriesuid,coordX,coordY,coordZ,probability\n'


def test_merge_tool(tmp_path):
    tool = load_tool('analysis_tools/merge_luna16_candidates.py')
    a, b = tmp_path / 'a.csv', tmp_path / 'b.csv'
    a.write_text(HEADER + 's1,0,0,0,0.8\ns1,40,0,0,0.6\n')
    b.write_text(HEADER + 's1,2,0,0,0.4\ns2,0,0,0,0.9\n')
    out = tmp_path / 'merged' / 'candidates.csv'
    summary = tool.main([str(a), str(b), '--out', str(out)])
    assert summary['pairs'] == 1 and summary['written'] == 1
    c = read_candidates_csv(str(out))
    assert c.seriesuids.tolist() == ['s1']
    assert c.xyz.tolist() == [[1., 0., 0.]]
    assert c.probability.tolist() == [pytest.approx(0.6)]
    assert [p.name for p in out.parent.iterdir()] == ['candidates.csv']
    with pytest.raises(SystemExit, match='--overwrite'):
        tool.main([str(a), str(b), '--out', str(out), '--mode', 'union'])
    summary = tool.main([str(a), str(b), '--out', str(out), '--mode',
                         'union', '--overwrite'])
    assert len(read_candidates_csv(str(out)).seriesuids) == 3
    with pytest.raises(SystemExit, match='input'):
        tool.main([str(a), str(b), '--out', str(a), '--overwrite'])
    b.write_text(HEADER + 's1,2,0,x,0.4\n')
    with pytest.raises(ValueError, match=r"b.csv line 2: field 'coordZ'"):
        tool.main([str(a), str(b), '--out', str(out), '--overwrite'])
    assert len(read_candidates_csv(str(out)).seriesuids) == 3  # untouched
