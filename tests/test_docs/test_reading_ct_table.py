# Copyright (c) mmlesion contributors. All rights reserved.
"""``docs/reading_ct.md`` names, for each header field, the test that
holds what the reader does: every test it names exists in the file its
short name stands for, and every test of the attribute file is named."""
import re

from mmlesion.testing import repo_root

ROOT = repo_root()
PAGE = ROOT / 'docs' / 'reading_ct.md'
VOLUMES = 'tests/test_datasets/test_volumes/'


def _files() -> dict:
    """Short name -> test file, from the page's own legend."""
    text = PAGE.read_text()
    out = {}
    for short, name in re.findall(r'^\| ([a-z0-9, ]+) \| `([^`]+\.py)`',
                                  text, re.M):
        for key in short.split(', '):
            out[key] = ROOT / VOLUMES / name
    out['r4'] = ROOT / VOLUMES / 'test_bad_input_round4_volumes.py'
    out['r5'] = ROOT / VOLUMES / 'test_bad_input_round5_volumes.py'
    return out


def named_tests():
    """(file, test name) of every test a table cell names."""
    files = _files()
    for cell in re.findall(r'\| ([^|]*`test_[^|]*) \|$', PAGE.read_text(),
                           re.M):
        for part in re.split(r'; ', cell):
            head, _, names = part.partition(': ')
            where = files.get(head.strip()) or ROOT / head.strip('` ')
            for name in re.findall(r'`(test_\w+)`', names):
                yield where, name


def test_every_named_test_exists():
    named = list(named_tests())
    assert len(named) > 40
    missing = [f'{path.name}: {name}' for path, name in named
               if not path.is_file() or
               f'def {name}(' not in path.read_text()]
    assert missing == []


def test_every_attribute_test_is_named():
    path = _files()['attr']
    tests = re.findall(r'^def (test_\w+)\(', path.read_text(), re.M)
    named = {name for where, name in named_tests() if where == path}
    assert sorted(set(tests) - named) == []
