# Copyright (c) mmlesion contributors. All rights reserved.
"""``docs/README.md``, the index of ``docs/``.

* Every page of ``docs/`` is linked from it exactly once.
* Its links point to files of the repository (:func:`broken_links` of
  ``test_user_docs.py``) and to headings those files have, by GitHub's
  anchor rule (lower case, punctuation removed, spaces to ``-``).
* The part for users comes first, its sections in a project's order; the
  part for contributors follows.
"""
import importlib.util
import re
from collections import Counter
from pathlib import Path
from typing import List, Set

from mmlesion.testing import repo_root

ROOT = repo_root()
INDEX = ROOT / 'docs' / 'README.md'
USERS, CONTRIBUTORS = '## For users', '## For contributors'
#: The users' sections, in the order a project needs them.
USER_SECTIONS = ('Get started', 'Data', 'Train', 'Evaluate', 'Infer',
                 'Reproduce a table', 'Cluster', 'FAQ')
#: A link's target and its anchor (either may be empty).
TARGET = re.compile(r'\]\(([^)#\s]*)(?:#([^)\s]*))?\)')
HEADING = re.compile(r'^#{1,6}\s+(.+?)\s*#*\s*$')


def _user_docs():
    """``test_user_docs.py`` (tests are imported by path: importlib mode)."""
    spec = importlib.util.spec_from_file_location(
        'user_docs_checks', Path(__file__).with_name('test_user_docs.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


broken_links = _user_docs().broken_links


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, everything but
    letters, digits, ``_``, ``-`` and spaces removed, spaces to ``-``."""
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def anchors(path: Path) -> Set[str]:
    """The anchors of a markdown file's headings (not of ``#`` lines in
    fenced blocks); a repeated heading gets ``-1``, ``-2``... as on
    GitHub."""
    seen: Counter = Counter()
    out, fenced = set(), False
    for line in path.read_text().splitlines():
        fenced ^= line.lstrip().startswith('```')
        m = HEADING.match(line)
        if m and not fenced:
            anchor = github_anchor(m.group(1))
            out.add(f'{anchor}-{seen[anchor]}' if seen[anchor] else anchor)
            seen[anchor] += 1
    return out


def broken_anchors(path: Path) -> List[str]:
    """``file#anchor`` links of a markdown file whose file exists but has
    no such heading."""
    out = []
    for target, anchor in TARGET.findall(path.read_text()):
        doc = path.parent / target if target else path
        if anchor and doc.suffix == '.md' and doc.is_file() \
                and anchor not in anchors(doc):
            out.append(f'{path.name}: {target}#{anchor}')
    return out


def index_problems(index: Path, root: Path) -> List[str]:
    """What is wrong with ``index`` (the ``README.md`` of a docs folder of
    the repository ``root``); empty when nothing is."""
    text = index.read_text()
    linked = Counter((index.parent / t).resolve()
                     for t, _ in TARGET.findall(text)
                     if t and not re.match(r'^[a-z]+:', t))  # not http(s)
    problems = broken_links(index) + broken_anchors(index)
    for page in sorted(index.parent.glob('*.md')):
        if page != index and linked[page.resolve()] != 1:
            problems.append(f'{page.name} linked {linked[page.resolve()]} '
                            'times, not once')
    problems += [f'{t} is outside the repository' for t in linked
                 if root.resolve() not in t.parents]
    at = [text.find(h) for h in (USERS, CONTRIBUTORS)]
    if -1 in at or at[0] > at[1]:
        problems.append(f'"{USERS}" must come before "{CONTRIBUTORS}"')
    else:
        users = text[at[0]:at[1]]
        sections = re.findall(r'^### (.+)$', users, re.M)
        if sections != list(USER_SECTIONS):
            problems.append(f'users\' sections {sections}, not '
                            f'{list(USER_SECTIONS)}')
    return problems


def test_docs_index():
    assert index_problems(INDEX, ROOT) == []


def test_github_anchor():
    assert github_anchor('§1 DeepLesion 2D FROC') == '1-deeplesion-2d-froc'
    assert github_anchor("A day's scans") == 'a-days-scans'
    assert github_anchor('CT volumes (LUNA16, KiTS19, LiTS, NIH-LN)') == \
        'ct-volumes-luna16-kits19-lits-nih-ln'


def _docs(tmp_path: Path, index: str) -> Path:
    """A repository in ``tmp_path`` with ``docs/{a,b}.md`` and ``index``
    as ``docs/README.md``."""
    docs = tmp_path / 'repo' / 'docs'
    docs.mkdir(parents=True)
    (docs / 'a.md').write_text('# A\n\n## Some part (2D)\n\n```bash\n'
                               '# not a heading\n```\n')
    (docs / 'b.md').write_text('# B\n')
    (docs / 'README.md').write_text(index)
    return docs / 'README.md'


GOOD = ('# Docs\n\n## For users\n\n' +
        ''.join(f'### {s}\n\n' for s in USER_SECTIONS) +
        '- [a](a.md#some-part-2d): a part\n\n'
        '## For contributors\n\n- [b](b.md): b\n')


def test_index_checks_pass_a_good_index(tmp_path):
    index = _docs(tmp_path, GOOD)
    assert index_problems(index, index.parents[1]) == []


def test_index_checks_can_fail(tmp_path):
    # a page missing, a missing heading and a missing file
    index = _docs(tmp_path, GOOD.replace(
        '- [b](b.md): b', '- [c](c.md): c\n- [a](a.md#not-a-heading)'))
    assert index_problems(index, index.parents[1]) == [
        'README.md: c.md', 'README.md: a.md#not-a-heading',
        'a.md linked 2 times, not once', 'b.md linked 0 times, not once']
    # contributors first
    users, contributors = GOOD.split('## For contributors')
    index.write_text('## For contributors' + contributors + users)
    assert index_problems(index, index.parents[1]) == [
        '"## For users" must come before "## For contributors"']
    # the users' sections out of order, a link leaving the repository
    index.write_text(GOOD.replace('### Train\n\n### Evaluate',
                                  '### Evaluate\n\n### Train') +
                     '- [x](../../outside.md), [y](https://x.org)\n')
    (tmp_path / 'outside.md').write_text('# x\n')
    problems = index_problems(index, index.parents[1])
    assert len(problems) == 2
    assert problems[0].endswith('outside.md is outside the repository')
    assert problems[1].startswith("users' sections")
