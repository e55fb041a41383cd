# Copyright (c) mmlesion contributors. All rights reserved.
"""The shell commands of the user docs, as a reader would type them.

:func:`doc_commands` reads the fenced ``bash`` / ``shell`` / ``sh`` blocks
of a markdown file and turns each into the commands it runs:

* comment lines and trailing comments (`` # ...`` outside quotes) dropped;
* continuation lines (a trailing backslash) joined;
* statements split at ``;`` and ``&&`` outside quotes;
* shell variables assigned in the same block (``C=configs/x``,
  ``A="--annotations ..."``) substituted in the lines after them
  (``$C``, ``${C}``), the assignments themselves not being commands;
* a ``for V in a b c; do ... done`` loop (one line or several) unrolled:
  one command per body command and value, ``$V`` substituted.

What is left (``$T``, ``CONFIG``) is kept as written, so a caller can tell
placeholders apart. :func:`inline_commands` finds the commands written
inline (`` `python tools/...` ``, `` `python projects/...` ``, `` `python
-m ...` ``, `` `bash tools/...` ``) outside the fenced blocks, so a test can
require that every command touching real data sits in a block it runs, and
start every one of them.
"""
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple, Union

#: Fence languages taken as shell.
SHELL_LANGS = ('bash', 'shell', 'sh')
_FENCE = re.compile(r'^(\s*)```(\S*)\s*$')
_ASSIGN = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*)=(.*)$')
_VAR = re.compile(r'\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))')
_FOR = re.compile(r'^for\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\s+(.*)$')


@dataclass
class DocCommand:
    """One command of a doc.

    Attributes:
        doc (str): the markdown file (as given).
        line (int): 1-based line of the block where the command starts.
        text (str): the command, variables of the block substituted.
        written (str): the command as written (continuations joined).
        loop (dict): loop variables and their value for this command.
    """
    doc: str
    line: int
    text: str
    written: str
    loop: Dict[str, str] = field(default_factory=dict)

    def argv(self) -> List[str]:
        """The command split as the shell would (quotes removed)."""
        return shlex.split(self.text)


def fenced_blocks(text: str) -> List[Tuple[str, int, List[str]]]:
    """``(language, first body line (1-based), body lines)`` of every
    fenced block."""
    out, lang, start, body = [], None, 0, []
    for i, line in enumerate(text.splitlines(), 1):
        m = _FENCE.match(line)
        if m and lang is None:
            lang, start, body = m.group(2).lower(), i + 1, []
        elif m and not m.group(2):
            out.append((lang, start, body))
            lang = None
        elif lang is not None:
            body.append(line)
    return out


def strip_comment(line: str) -> str:
    """``line`` without a ``#`` comment (outside quotes, at the start or
    after a blank)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in '\'"':
            quote = ch
        elif ch == '#' and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def join_continuations(lines: List[str], first: int = 1
                       ) -> List[Tuple[int, str]]:
    """``(line number, logical line)``: comments dropped, lines ending in a
    backslash joined with the next."""
    out: List[Tuple[int, str]] = []
    buf, at = '', None
    for i, raw in enumerate(lines, first):
        line = strip_comment(raw)
        if at is None:
            if not line.strip():
                continue
            at = i
        if line.endswith('\\'):
            buf += line[:-1].rstrip() + ' '
            continue
        buf += line.strip() if buf else line.strip()
        out.append((at, ' '.join(buf.split()) if '"' not in buf
                    and "'" not in buf else buf.strip()))
        buf, at = '', None
    if at is not None:
        out.append((at, buf.strip()))
    return out


def split_statements(line: str) -> List[str]:
    """``line`` split at ``;`` and ``&&`` outside quotes."""
    out, quote, cur, i = [], None, '', 0
    while i < len(line):
        ch = line[i]
        if quote:
            quote = None if ch == quote else quote
        elif ch in '\'"':
            quote = ch
        elif ch == ';' or line.startswith('&&', i):
            out.append(cur.strip())
            cur = ''
            i += 2 if ch == '&' else 1
            continue
        cur += ch
        i += 1
    out.append(cur.strip())
    return [s for s in out if s]


def substitute(text: str, env: Dict[str, str]) -> str:
    """``$NAME`` / ``${NAME}`` of ``env`` replaced; others kept."""

    def repl(m: 're.Match') -> str:
        name = m.group(1) or m.group(2)
        return env.get(name, m.group(0))

    return _VAR.sub(repl, text)


def _assignment(stmt: str) -> Optional[Tuple[str, str]]:
    """``(name, value)`` when ``stmt`` only assigns a variable (not
    ``NAME=value command``, an environment for one command)."""
    try:
        words = shlex.split(stmt)
    except ValueError:
        return None
    m = _ASSIGN.match(words[0]) if len(words) == 1 else None
    return (m.group(1), m.group(2)) if m else None


def _commands(statements: List[Tuple[int, str]], env: Dict[str, str],
              doc: str, loop: Dict[str, str]) -> Iterator[DocCommand]:
    i = 0
    while i < len(statements):
        at, stmt = statements[i]
        m = _FOR.match(stmt)
        if m:
            var, values = m.group(1), substitute(m.group(2), env).split()
            # the body: up to the matching `done`
            depth, j, body = 1, i + 1, []
            while j < len(statements):
                s = statements[j][1]
                if _FOR.match(s):
                    depth += 1
                if s == 'done' or s.startswith('done '):
                    depth -= 1
                    if depth == 0:
                        break
                body.append(statements[j])
                j += 1
            if body and body[0][1] == 'do':
                body = body[1:]
            elif body and body[0][1].startswith('do '):
                body[0] = (body[0][0], body[0][1][3:].strip())
            for value in values:
                yield from _commands(body, {**env, var: value}, doc,
                                     {**loop, var: value})
            i = j + 1
            continue
        a = _assignment(stmt)
        if a:
            env[a[0]] = substitute(a[1], env)
        elif stmt not in ('do', 'done', 'wait'):
            yield DocCommand(doc, at, substitute(stmt, env), stmt, loop)
        i += 1


def block_commands(lines: List[str], doc: str = '', first: int = 1,
                   env: Optional[Dict[str, str]] = None) -> List[DocCommand]:
    """The commands of one shell block (see the module docstring)."""
    statements = [(at, s) for at, line in join_continuations(lines, first)
                  for s in split_statements(line)]
    return list(_commands(statements, dict(env or {}), doc, {}))


def doc_commands(path: Union[str, Path], root: Optional[Path] = None
                 ) -> List[DocCommand]:
    """Every command of the shell blocks of a markdown file; ``doc`` is the
    path relative to ``root`` when given."""
    path = Path(path)
    name = path.relative_to(root).as_posix() if root else str(path)
    out = []
    for lang, start, body in fenced_blocks(path.read_text(encoding='utf-8')):
        if lang in SHELL_LANGS:
            out.extend(block_commands(body, name, start))
    return out


_INLINE = re.compile(r'`((?:bash|python) (?:tools|projects|-m)[^`]*)`')


def inline_commands(path: Union[str, Path]) -> List[Tuple[int, str]]:
    """``(line, command)`` of the commands written inline (in backticks)
    outside fenced blocks; a span wrapped over lines is joined."""
    text = Path(path).read_text(encoding='utf-8')
    lines, inside, keep = text.splitlines(), None, []
    for line in lines:
        m = _FENCE.match(line)
        if m:
            inside = None if inside else m.group(2) or 'plain'
            keep.append('')
            continue
        keep.append('' if inside else line)
    flat = '\n'.join(keep)
    out = []
    for m in re.finditer(r'`([^`]+)`', flat):
        span = ' '.join(m.group(1).split())
        if _INLINE.fullmatch(f'`{span}`'):
            out.append((flat.count('\n', 0, m.start()) + 1, span))
    return out
