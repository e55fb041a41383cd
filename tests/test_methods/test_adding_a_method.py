# Copyright (c) mmlesion contributors. All rights reserved.
"""``docs/adding_a_method.md`` against the method it shows: its file table
lists the toy method's files as git has them (``projects/toy/`` and its
test, ``tests/test_projects/test_toy.py``, which runs it end to end), at
most 8 files in at most 4 folders, the count its text states; its example
module compiles, with the same tables in its index and its builders."""
import ast
import posixpath
import re
import subprocess

from mmlesion.testing import repo_root

PAGE = repo_root() / 'docs' / 'adding_a_method.md'
#: a row of the page's file table: ``| n | `path` | what |``
PAGE_ROW = re.compile(r'^\| (\d+) \| `([^`]+)` \|', re.M)
#: the page's example of a method's tables module
PAGE_MODULE = re.compile(
    r'`mmlesion/methods/mymethod/tables\.py`:\s*```python\n(.*?)```', re.S)


def _toy_files():
    """The toy's files in git: its folder and its test."""
    out = subprocess.run(
        ['git', 'ls-files', 'projects/toy', 'tests/test_projects/test_toy.py'],
        cwd=repo_root(), capture_output=True, text=True, check=True)
    return sorted(out.stdout.split())


def test_the_page_lists_the_toys_files_at_most_8_in_4_folders():
    text = PAGE.read_text()
    rows = PAGE_ROW.findall(text)
    assert [int(n) for n, _ in rows] == list(range(1, len(rows) + 1))
    files = [path for _, path in rows]
    folders = {posixpath.dirname(path) for path in files}
    assert len(files) <= 8 and len(folders) <= 4, (files, folders)
    assert (f'That is {len(files)} files in {len(folders)} folders. '
            'Nothing else is edited') in ' '.join(text.split())
    if (repo_root() / '.git').exists():  # a clone: the files git has
        assert sorted(files) == _toy_files()
    assert all((repo_root() / f).is_file() for f in files)


def _assigned(tree: ast.AST, name: str) -> ast.AST:
    return next(node.value for node in ast.walk(tree)
                if isinstance(node, ast.Assign)
                and getattr(node.targets[0], 'id', '') == name)


def test_the_example_module_compiles_with_matching_tables():
    (example, ) = PAGE_MODULE.findall(PAGE.read_text())
    tree = ast.parse(example)
    compile(example, 'tables.py', 'exec')
    index = ast.literal_eval(_assigned(tree, 'TABLE_INDEX'))
    builders = _assigned(tree, 'BUILDERS')
    assert list(index) == [ast.literal_eval(k) for k in builders.keys]
    assert all(set(t) == {'title', 'rows'} for t in index.values())
