# Copyright (c) mmlesion contributors. All rights reserved.
"""Mutation testing of one folder or file of the package (mutmut 3).

Mutates only the given code, runs only the tests that mirror it
(``mmlesion/evaluation/functional/froc.py`` ->
``tests/test_evaluation/test_functional/test_froc*.py``; a folder -> its
mirroring test folder), prints the score and lists the surviving mutants.
The rest of the ``[mutmut]`` section of ``setup.cfg`` applies. Needs
``pip install -r requirements/mutation.txt``; works in ``mutants/`` (a copy
of the package, git-ignored), never in the package itself. The real data is
used when the tests find it, unless ``--without-data``. See
docs/mutation_testing.md.

Example::

    python projects/mutation/mutation_test.py mmlesion/evaluation/functional/froc.py
    python projects/mutation/mutation_test.py mmlesion/evaluation/functional/luna16/
    python projects/mutation/mutation_test.py mmlesion/evaluation/ \
        --changed-since main
    python projects/mutation/mutation_test.py mmlesion/structures/recist.py \
        --tests tests/test_structures/test_recist.py
"""
import argparse
import ast
import dataclasses
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from mmlesion_cli import tool_parser  # noqa: E402

PACKAGE = 'mmlesion'
#: mutmut verdicts counted as killed: a test failed or timed out, or the
#: test process died under the mutant (mutmut's "segfault": SIGSEGV or
#: SIGKILL, e.g. an OpenCV call given ``None``): the tests noticed it.
KILLED = ('killed', 'timeout', 'caught by type check', 'segfault')
#: The list of the equivalent mutants (``- `NAME`: reason`` lines).
EQUIVALENTS_DOC = ROOT / 'projects' / 'mutation' / 'mutation_equivalents.md'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument(
        'target',
        help='folder or .py file of the package to mutate (relative to the '
        'repository root)')
    parser.add_argument(
        '--tests',
        nargs='+',
        help='test files or folders to run instead of the mirroring ones')
    parser.add_argument(
        '--changed-since',
        metavar='REV',
        help='mutate only the functions whose lines changed since this git '
        'revision (committed or not)')
    parser.add_argument(
        '--max-children',
        type=int,
        default=2,
        help='mutants tested at once (one process each)')
    parser.add_argument(
        '--without-data',
        action='store_true',
        help='hide the real data from the tests (they skip what needs it)')
    parser.add_argument(
        '--fresh',
        action='store_true',
        help='delete mutants/ first instead of reusing its cached results')
    parser.add_argument(
        '--dry-run',
        action='store_true',
        help='print the files, tests and mutant names and stop')
    return parser.parse_args(argv)


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def target_files(target: Path) -> List[Path]:
    """The ``.py`` files of ``target`` (a file or a folder)."""
    if target.is_file():
        return [target]
    return sorted(p for p in target.rglob('*.py')
                  if '__pycache__' not in p.parts)


def mirror_tests(target: Path) -> List[Path]:
    """The test files or folders that mirror ``target``.

    ``mmlesion/a/b/c.py`` -> ``tests/test_a/test_b/test_c*.py``, a folder
    ``mmlesion/a/b/`` -> ``tests/test_a/test_b/`` (or
    ``tests/test_a/test_b*.py`` when that folder does not exist); failing
    both, the deepest mirroring folder that exists.
    """
    parts = target.relative_to(ROOT / PACKAGE).parts
    name = parts[-1][:-3] if target.is_file() else parts[-1] if parts else ''
    dirs = [ROOT / 'tests']
    for part in parts[:-1]:
        dirs.append(dirs[-1] / f'test_{part}')
    parent = dirs[-1]
    if name and name != '__init__':
        if target.is_dir() and (parent / f'test_{name}').is_dir():
            return [parent / f'test_{name}']
        if parent.is_dir():
            files = sorted(parent.glob(f'test_{name}*.py'))
            if files:
                return files
    for folder in reversed(dirs):
        if folder.is_dir():
            return [folder]
    return [ROOT / 'tests']


def changed_lines(files: Sequence[Path], rev: str) -> Dict[Path, Set[int]]:
    """Lines (1-based, in the working tree) changed since ``rev``."""
    out: Dict[Path, Set[int]] = {}
    for path in files:
        diff = subprocess.run(
            ['git', 'diff', '-U0', rev, '--', _rel(path)],
            cwd=ROOT, capture_output=True, text=True, check=True).stdout
        tracked = subprocess.run(
            ['git', 'ls-files', '--error-unmatch', _rel(path)],
            cwd=ROOT, capture_output=True).returncode == 0
        lines: Set[int] = set()
        if not tracked:  # a new file: every line
            lines = set(range(1, len(path.read_text().splitlines()) + 1))
        for m in re.finditer(r'^@@ -\S+ \+(\d+)(?:,(\d+))? @@', diff, re.M):
            start, count = int(m.group(1)), int(m.group(2) or 1)
            lines.update(range(start, start + max(count, 1)))
        if lines:
            out[path] = lines
    return out


def module_name(path: Path) -> str:
    name = _rel(path)[:-3].replace('/', '.')
    return name[:-len('.__init__')] if name.endswith('.__init__') else name


def changed_mutant_globs(lines_by_file: Dict[Path, Set[int]]) -> List[str]:
    """mutmut name patterns of the top-level functions and methods that
    contain a changed line (mutmut mutates only inside functions)."""
    globs = []
    for path, lines in lines_by_file.items():
        tree = ast.parse(path.read_text())
        mod = module_name(path)

        def visit(body, cls=None):
            for node in body:
                if isinstance(node, ast.ClassDef) and cls is None:
                    visit(node.body, node.name)
                elif isinstance(node,
                                (ast.FunctionDef, ast.AsyncFunctionDef)):
                    first = min([node.lineno] +
                                [d.lineno for d in node.decorator_list])
                    if lines & set(range(first, node.end_lineno + 1)):
                        key = (f'x\u01c1{cls}\u01c1{node.name}'
                               if cls else f'x_{node.name}')
                        globs.append(f'{mod}.{key}__mutmut_*')

        visit(tree.body)
    return globs


def equivalent_mutants() -> Set[str]:
    """Names of the mutants listed as equivalent in :data:`EQUIVALENTS_DOC`."""
    if not EQUIVALENTS_DOC.is_file():
        return set()
    return set(
        re.findall(r'^- `([\w.\u01c1]+__mutmut_\d+)`:',
                   EQUIVALENTS_DOC.read_text(encoding='utf-8'), re.M))


def summarize(files: Sequence[Path]) -> int:
    """Print the score per file (equivalent mutants left out) and the
    mutants not killed; return how many were not killed."""
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code
    os.chdir(ROOT)
    equivalent = equivalent_mutants()
    total_killed = total = total_equiv = 0
    survivors, equivalents = [], []
    print()
    print(f'{"file":52s} {"mutants":>7s} {"equiv.":>6s} {"killed":>6s} '
          f'{"score":>7s}')
    for path in files:
        data = SourceFileMutationData(path=Path(_rel(path)))
        data.load()
        codes = data.exit_code_by_key
        if not codes:
            continue
        killed = equiv = 0
        for key, code in sorted(codes.items()):
            status = status_by_exit_code[code]
            if status in KILLED:
                killed += 1
            elif key in equivalent:
                equiv += 1
                equivalents.append(f'{key}: {status}')
            else:
                survivors.append(f'{key}: {status}')
        counted = len(codes) - equiv
        total_killed += killed
        total_equiv += equiv
        total += len(codes)
        score = 100 * killed / counted if counted else 100.0
        print(f'{_rel(path):52s} {len(codes):7d} {equiv:6d} {killed:6d} '
              f'{score:6.1f}%')
    if total:
        counted = total - total_equiv
        score = 100 * total_killed / counted if counted else 100.0
        print(f'{"all":52s} {total:7d} {total_equiv:6d} {total_killed:6d} '
              f'{score:6.1f}%')
    if equivalents:
        print(f'\nequivalent (listed in {_rel(EQUIVALENTS_DOC)}):')
        print('\n'.join(f'  {s}' for s in equivalents))
    if survivors:
        print('\nnot killed (see one with: mutmut show NAME):')
        print('\n'.join(f'  {s}' for s in survivors))
    return len(survivors)


def name_test_data(without_data: bool) -> None:
    """Name the real-data folder for the tests in ``MMLESION_SHARED_DATA``.

    The tests run from ``mutants/``, where the suite's own choice of the
    folder (``tests/helpers/data_roots.py``, beside the clone) is not beside
    them: the folder is named here, before they run, as the suite names it.
    The package is imported in a child process only: mutmut runs the tests
    in this one, where an imported ``mmlesion`` would shadow the mutated
    copy in ``mutants/`` (no mutant would be reached).

    Args:
        without_data (bool): name a folder that does not exist, so that the
            tests needing the data skip.
    """
    code = ('import os\n'
            'from mmlesion.utils.data_roots import SHARED_DATA_ENV\n'
            'from tests.helpers.data_roots import name_lab_shared_data\n'
            'name_lab_shared_data()\n'
            'print(SHARED_DATA_ENV, os.environ.get(SHARED_DATA_ENV, ""))')
    env_name, _, folder = subprocess.run(
        [sys.executable, '-c', code], cwd=ROOT, capture_output=True,
        text=True, check=True).stdout.strip().partition(' ')
    if without_data:
        os.environ[env_name] = str(ROOT / 'mutants' / 'no-data')
    elif folder:
        os.environ[env_name] = folder


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    target = (ROOT / args.target).resolve()
    if not target.exists() or PACKAGE not in target.relative_to(ROOT).parts[:1]:
        raise SystemExit(f'{args.target}: not a file or folder of {PACKAGE}/')
    files = target_files(target)
    tests = ([ROOT / t for t in args.tests]
             if args.tests else mirror_tests(target))
    globs: List[str] = []
    if args.changed_since:
        lines = changed_lines(files, args.changed_since)
        globs = changed_mutant_globs(lines)
        files = sorted(lines)
        if not globs:
            print(f'no function of {args.target} changed since '
                  f'{args.changed_since}: nothing to mutate')
            return 0
    print('mutating:', ' '.join(_rel(p) for p in files))
    print('tests:', ' '.join(_rel(p) for p in tests))
    if globs:
        print('functions:', ' '.join(globs))
    if args.dry_run:
        return 0

    os.chdir(ROOT)
    if args.fresh:
        import shutil
        shutil.rmtree(ROOT / 'mutants', ignore_errors=True)
    name_test_data(args.without_data)
    os.environ.setdefault('OMP_NUM_THREADS', '1')

    from mutmut import configuration
    cfg = configuration.config()
    rel_files = [_rel(p) for p in files]
    configuration._config = dataclasses.replace(
        cfg,
        only_mutate=rel_files,
        pytest_add_cli_args_test_selection=[_rel(t) for t in tests])

    import mutmut.__main__ as mutmut_main
    start = time.time()
    try:
        mutmut_main._run(globs, args.max_children)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise
    print(f'\nmutation run took {time.time() - start:.0f} s')
    return 1 if summarize(files) else 0


if __name__ == '__main__':
    sys.exit(main())
