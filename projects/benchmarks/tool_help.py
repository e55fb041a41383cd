# Copyright (c) mmlesion contributors. All rights reserved.
"""Find the tools and check their ``--help`` (tests and benchmark).

``tests/test_tools/test_tool_help.py`` runs every tool's ``--help`` and
checks it; ``projects/benchmarks/benchmark_tool_help.py`` times it. Both
find the tools with :func:`find_tool_scripts`, so a new tool is covered
without being listed anywhere.

It lives beside the benchmark, not in ``mmlesion_cli``: no tool a user
runs needs it, and the wheel holds no module only the laboratory uses
(``tests/test_packaging.py``).
"""
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

#: The argparse sections whose items must each have a help text.
_SECTION = re.compile(r'^(positional arguments|options|optional arguments'
                      r'|[^\s].*):$')
_ITEM = re.compile(r'^  (\S.*?)(?: {2,}(\S.*))?$')

#: What a help text must not say (:func:`help_text_problems`), by name:
#: references into the page ("see below": argparse orders the options, not
#: the author), paths of the developers' machine, files and issues of the
#: project's history (a user has neither).
_FORBIDDEN = (
    ('a reference to text below or above',
     re.compile(r'\b(?:see|shown|listed|described|explained|given|defaults?'
                r'|options?|arguments?|as)\s+(?:below|above)\b'
                r'|\b(?:below|above)\s*(?:[.:;)]|$)', re.I)),
    ("a path into ../shared", re.compile(r'\.\./shared\b')),
    ('PROTOCOLS', re.compile(r'\bPROTOCOLS\b')),
    ('an issue number', re.compile(r'\bissues?\s*#?\d+', re.I)),
    ('a commit hash',
     re.compile(r'\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b')),
)


def find_tool_scripts(root: Path,
                      folders: Sequence[str] = ('tools', )) -> List[Path]:
    """Every script under ``<root>/<folder>`` with a ``__main__`` block.

    Args:
        root (Path): the repository root.
        folders (sequence[str]): the folders searched (recursively).
            Defaults to ``('tools', )``.

    Returns:
        list[Path]: sorted paths.
    """
    scripts = []
    paths = sorted(p for folder in folders
                   for p in (Path(root) / folder).rglob('*.py'))
    for path in paths:
        if '__pycache__' in path.parts:
            continue
        if re.search(r"^if __name__ == ['\"]__main__['\"]:",
                     path.read_text(encoding='utf-8'), re.M):
            scripts.append(path)
    return scripts


@dataclass
class HelpResult:
    """What ``python <tool> --help`` did.

    Attributes:
        returncode (int): exit status.
        stdout (str): the help text.
        stderr (str): anything else printed (warnings, tracebacks).
        seconds (float): wall time of the whole process.
    """
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_tool_help(script: Path,
                  root: Path,
                  env: Optional[Dict[str, str]] = None,
                  timeout: float = 120.0) -> HelpResult:
    """Run ``python <script> --help`` in a fresh interpreter.

    Args:
        script (Path): the tool.
        root (Path): the repository root (working directory, and put on
            ``PYTHONPATH`` so that the checkout's mmlesion is imported).
        env (dict, optional): the environment (default: this process's).
        timeout (float): seconds before the process is killed.

    Returns:
        HelpResult: exit status, outputs and wall time.
    """
    env = dict(os.environ if env is None else env)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (str(root), env.get('PYTHONPATH', '')) if p)
    # Wide enough that no option line wraps before its help text.
    env['COLUMNS'] = '100'
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script), '--help'],
                          cwd=str(root),
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=timeout)
    return HelpResult(proc.returncode, proc.stdout, proc.stderr,
                      time.perf_counter() - start)


def options_without_help(help_text: str) -> List[str]:
    """The arguments that a ``--help`` lists without a help text.

    Reads argparse's layout: in each section (``options:``, ``positional
    arguments:``, a group title), an item is a line indented by two spaces;
    its help text follows on the same line or on the next, indented further.
    The ``examples:`` epilog is not read.

    Args:
        help_text (str): the output of ``--help``.

    Returns:
        list[str]: the invocations (e.g. ``'--seed SEED'``) with no help.
    """
    lines = help_text.splitlines()
    missing = []
    in_section = False
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if not line[:1].isspace():
            in_section = (bool(_SECTION.match(line))
                          and not line.startswith(('usage:', 'examples:')))
            continue
        if not in_section:
            continue
        item = _ITEM.match(line)
        if item is None or item.group(2):
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ''
        indent = len(nxt) - len(nxt.lstrip(' '))
        if not nxt.strip() or indent <= 2:
            missing.append(item.group(1).strip())
    return missing


def help_items(help_text: str) -> List[Tuple[str, str, str]]:
    """The arguments of a ``--help`` with their whole help texts.

    Reads argparse's layout as :func:`options_without_help` does; a help
    text wrapped over several lines is joined with single spaces.

    Args:
        help_text (str): the output of ``--help``.

    Returns:
        list[tuple]: ``(section, invocation, help)`` per argument, e.g.
        ``('options', '--seed SEED', 'random seed (default: 0)')``.
    """
    items: List[List[str]] = []
    section = None
    for line in help_text.splitlines():
        if not line.strip():
            continue
        if not line[:1].isspace():
            match = _SECTION.match(line)
            section = match.group(1) if match and not line.startswith(
                ('usage:', 'examples:')) else None
            continue
        if section is None:
            continue
        indent = len(line) - len(line.lstrip(' '))
        item = _ITEM.match(line) if indent == 2 else None
        if item is not None:
            items.append([section, item.group(1).strip(), item.group(2) or ''])
        elif items and indent > 2:
            items[-1][2] = f'{items[-1][2]} {line.strip()}'.strip()
    return [(sec, name, text) for sec, name, text in items]


def help_text_problems(help_text: str) -> List[str]:
    """What is wrong with a tool's ``--help`` text (empty: nothing).

    Checked: an argument whose help names its default twice (a hand-written
    ``(default: x)`` plus the formatter's); ``(default: None)`` (a required
    or positional argument, or one with no default, must not show one); and
    anywhere in the text: a reference to text "below" / "above", a path
    into ``../shared``, ``PROTOCOLS``, an issue number or a commit hash.

    Args:
        help_text (str): the output of ``--help``.

    Returns:
        list[str]: one line per problem, quoting the argument or the text.
    """
    problems = []
    for _, name, text in help_items(help_text):
        if len(re.findall(r'\(default\b', text)) > 1:
            problems.append(f'{name}: the default twice: {text!r}')
    flat = ' '.join(help_text.split())
    if '(default: None)' in flat:
        problems.append('"(default: None)": a required or positional '
                        'argument, or one without a default, shows one')
    for what, pattern in _FORBIDDEN:
        for match in pattern.finditer(flat):
            start = max(match.start() - 40, 0)
            problems.append(f'{what}: ...{flat[start:match.end() + 40]}...')
    return problems
