# Copyright (c) mmlesion contributors. All rights reserved.
"""What a user reads: the main README, ``docs/``, the method READMEs and
``projects/``.

* The README stays short (about 250 lines) and each method README is in
  mmdet's form (its sections, at most about 200 lines), linking its
  results page ``projects/<method>/RESULTS.md`` where it has one (the
  page is optional); every page of ``docs/`` stays within 250 lines.
* Every relative link points to a file of the repository.
* No user doc names a file users lack (our development folder beside the
  clone), an internal protocol file, an issue number or a commit.
* The README's example user config changes what it says it changes:
  every value it sets differs from the base config's.
"""
import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from mmlesion.apps.reproduce.paper_tables import PAPER_TABLES
from mmlesion.testing import repo_root

ROOT = repo_root()
#: every registered method (a new one needs no edit here)
METHODS = tuple(PAPER_TABLES.parts())
USER_DOCS = sorted([ROOT / 'README.md', ROOT / 'data' / 'README.md',
                    ROOT / 'projects' / 'README.md'] +
                   list((ROOT / 'docs').glob('*.md')) +
                   [ROOT / 'configs' / m / 'README.md' for m in METHODS] +
                   [ROOT / 'projects' / m / 'RESULTS.md' for m in METHODS
                    if (ROOT / 'projects' / m / 'RESULTS.md').is_file()])
METHOD_SECTIONS = ('## Abstract', '## Components', '## Results and models',
                   '## Usage', '## Choices the paper leaves open',
                   '## Citation')
#: What no user doc may say (our development folders and trackers).
FORBIDDEN = (re.compile(r'\.\./shared'), re.compile(r'PROTOCOLS'),
             re.compile(r'\bissue \d+', re.I),
             re.compile(r'\bcommit [0-9a-f]{7,40}\b'))
LINK = re.compile(r'\]\(([^)#\s]+)(?:#[^)]*)?\)')


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_readme_is_short():
    assert len((ROOT / 'README.md').read_text().splitlines()) <= 250


def test_every_docs_page_is_within_250_lines():
    long = {_rel(p): n for p in sorted((ROOT / 'docs').glob('*.md'))
            if (n := len(p.read_text().splitlines())) > 250}
    assert long == {}


@pytest.mark.parametrize('method', METHODS)
def test_method_readme_in_mmdet_form(method):
    text = (ROOT / 'configs' / method / 'README.md').read_text()
    assert len(text.splitlines()) <= 210
    assert text.startswith('# ')
    at = [text.find(s) for s in METHOD_SECTIONS]
    assert -1 not in at, [s for s, i in zip(METHOD_SECTIONS, at) if i < 0]
    assert at == sorted(at), 'sections out of order'
    assert '```bibtex' in text
    # a results page is optional; one that exists is linked from the
    # README, and the README links none that does not
    results = f'projects/{method}/RESULTS.md'
    assert (results in text) == (ROOT / results).is_file(), results


def broken_links(path: Path) -> List[str]:
    """Relative links of a markdown file that point to nothing."""
    out = []
    for target in LINK.findall(path.read_text()):
        if re.match(r'^[a-z]+:', target):
            continue  # http(s), mailto
        if not (path.parent / target).exists():
            out.append(f'{path.name}: {target}')
    return out


@pytest.mark.parametrize('path', USER_DOCS, ids=_rel)
def test_links_resolve(path):
    assert broken_links(path) == [], _rel(path)


@pytest.mark.parametrize('path', USER_DOCS, ids=_rel)
def test_names_nothing_users_lack(path):
    text = path.read_text()
    found = [p.pattern for p in FORBIDDEN if p.search(text)]
    assert found == [], f'{_rel(path)}: {found}'


def test_link_and_name_checks_can_fail(tmp_path):
    doc = tmp_path / 'x.md'
    doc.write_text('see [a](missing.md), [b](https://x.org) and '
                   f'[c]({doc.name}#top); fixed in issue 12\n')
    assert broken_links(doc) == ['x.md: missing.md']
    assert any(p.search(doc.read_text()) for p in FORBIDDEN)


def readme_user_config() -> str:
    """The README's example config (the block headed by its file name)."""
    text = (ROOT / 'README.md').read_text()
    (block, ) = re.findall(
        r'```python\n(# my_project/my_detector\.py\n.*?)```', text, re.S)
    return block


def set_values(node: Any, prefix: Tuple[str, ...] = ()
               ) -> Iterator[Tuple[Tuple[str, ...], Any]]:
    """``(key path, value)`` of every leaf a config dict sets."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from set_values(value, prefix + (key, ))
    else:
        yield prefix, node


def _assigned(block: str) -> Dict[str, Any]:
    """The top-level names the block assigns (``dict(...)`` evaluated
    without running the file), ``_base_`` left out."""
    out = {}
    for stmt in ast.parse(block).body:
        if isinstance(stmt, ast.Assign) and stmt.targets[0].id != '_base_':
            out[stmt.targets[0].id] = eval(  # noqa: S307 (our README)
                compile(ast.Expression(stmt.value), 'README', 'eval'),
                {'dict': dict})
    return out


@pytest.mark.usefixtures('code_forked')  # its -c forks: not about imports
def test_readme_user_config_changes_what_it_sets(tmp_path):
    block = readme_user_config()
    user = tmp_path / 'my_project'
    user.mkdir()
    (user / 'my_detector.py').write_text(block)
    base = re.search(r"_base_ = 'mmlesion::(.+?)'", block).group(1)
    code = ('import json, sys\n'
            'import mmlesion\n'
            'from mmengine.config import Config\n'
            "mine = Config.fromfile('my_detector.py').to_dict()\n"
            'base = Config.fromfile(mmlesion.utils.lesion_config_path('
            'sys.argv[1])).to_dict()\n'
            'print(json.dumps([mine, base], default=str))\n')
    run = subprocess.run([sys.executable, '-c', code, base], cwd=user,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    mine, base_cfg = json.loads(run.stdout.strip().splitlines()[-1])
    leaves = list(set_values(_assigned(block)))
    assert leaves, 'the example sets nothing'
    for keys, value in leaves:
        got, was = mine, base_cfg
        for key in keys:
            got, was = got[key], was[key]
        assert got == value, keys
        assert was != value, f'{".".join(keys)} is already {was!r} in ' \
            'the base: the example changes nothing there'


def test_elixirnet_trpn_rows_say_which_variant():
    """Table 5's "+TRPN" comes as two rows: the paper-pure Eq. (1) (no
    location loss, ``-noaux``) and ours (an auxiliary location loss on p);
    each row of the README says which it is."""
    rows = {
        line.split('](./')[1].split('.py')[0]: line
        for line in (ROOT / 'configs' / 'elixirnet' / 'README.md'
                     ).read_text().splitlines()
        if line.startswith('| + TRPN') and '](./' in line
    }
    pure = rows['elixirnet-trpn-noaux_r50_fpn_4xb2-1x_deeplesion-3slice']
    ours = rows['elixirnet-trpn_r50_fpn_4xb2-1x_deeplesion-3slice']
    assert 'paper-pure' in pure and 'our variant' not in pure
    assert 'our variant' in ours and 'location loss' in ours


def test_luna16_conversion_writes_what_the_configs_read():
    """data/README.md's LUNA16 converter command writes the annotation file
    the 3D Aggregated Faster R-CNN configs read (followed as written, the
    paper rows must find their data)."""
    from mmlesion.testing import get_config
    text = (ROOT / 'data' / 'README.md').read_text()
    (row, ) = [line for line in text.splitlines()
               if line.startswith('| LUNA16 |')]
    out = re.search(r'--out (\S+?)`', row).group(1)
    cfg = get_config('aggregated3d/aggregated3d_denseunet3d_anchor1_'
                     '4xb2-50e_luna16.py')
    ds = cfg.train_dataloader.dataset
    while 'dataset' in ds:
        ds = ds.dataset
    assert out == ds.data_root + ds.ann_file
