# Copyright (c) mmlesion contributors. All rights reserved.
"""``tools/plan_dataset.py``'s device and budget options: what is missing
or wrong is refused in one line before anything is read or written."""
import pytest

from tests.helpers.tool_modules import load_tool


@pytest.mark.parametrize('args, message', [
    (['--device', 'cpu'], '--device cpu needs --budget-minutes'),
    ([], '--gpu-mem-gb is required'),
    (['--gpu-mem-gb', '8', '--budget-minutes', '0'],
     '--budget-minutes must be > 0'),
    (['--gpu-mem-gb', 'nan'], '--gpu-mem-gb must be > 0'),
    (['--gpu-mem-gb', '-3'], '--gpu-mem-gb must be > 0'),
])
def test_refused_in_one_line(tmp_path, capsys, args, message):
    out = tmp_path / 'p.py'
    assert load_tool('plan_dataset.py').main(
        [str(tmp_path / 'missing.json'), '--out', str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and message in err
    assert not out.exists()
