# Copyright (c) mmlesion contributors. All rights reserved.
"""The argument parser of every mmlesion tool.

Two things a first-time user needs from ``--help`` that a plain
``argparse.ArgumentParser`` does not give: the defaults of the options, and
the tool's whole description (the first paragraph of its docstring, not
its first line cut mid-sentence), with the docstring's own line breaks.
"""
import argparse
import re
import textwrap
from typing import Any, List, Optional


class ToolHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults after each help text; commands in the texts kept as written.

    ``(default: ...)`` is appended to every option with a help text and a
    default other than ``None`` / ``False`` (a flag's ``False`` and an
    unset ``None`` say nothing); a help text that already names its
    default with ``%(default)s`` is left alone. In the description and the
    epilog, a paragraph with indented lines (an example command) is printed
    as written, every other paragraph is re-wrapped to the terminal. Texts
    wrap at blanks only: a path or a config name is never cut at a hyphen
    (``faster-`` / ``rcnn_...``).
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:
            return action.help or ''
        return super()._get_help_string(action)

    def _split_lines(self, text: str, width: int) -> List[str]:
        text = self._whitespace_matcher.sub(' ', text).strip()
        return textwrap.wrap(
            text, width, break_on_hyphens=False, break_long_words=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for para in text.split('\n\n'):
            lines = para.splitlines()
            if any(line[:1].isspace() for line in lines[1:]):
                paragraphs.append('\n'.join(indent + line for line in lines))
            else:
                paragraphs.append('\n'.join(
                    indent + line for line in self._split_lines(
                        para, max(width - len(indent), 11))))
        return '\n\n'.join(paragraphs)


def tool_description(doc: Optional[str]) -> str:
    """The first paragraph of a tool's docstring, whole.

    Args:
        doc (str, optional): the tool's ``__doc__``.

    Returns:
        str: the paragraph (stripped), with the indented block that follows
        it if it ends with ``::``; ``''`` for no docstring.
    """
    if not doc:
        return ''
    paragraphs = doc.strip().split('\n\n')
    first = paragraphs[0].strip()
    if first.endswith('::') and len(paragraphs) > 1:
        # "... prints the times::" introduces the commands below it.
        return first[:-1] + '\n\n' + paragraphs[1].rstrip()
    return first


def tool_examples(doc: Optional[str]) -> str:
    """The ``Example::`` / ``Examples::`` block of a tool's docstring.

    Args:
        doc (str, optional): the tool's ``__doc__``.

    Returns:
        str: ``'examples:'`` and the indented commands below the heading
        (up to the first line that is not indented), or ``''`` if the
        docstring has none.
    """
    lines = (doc or '').splitlines()
    for i, line in enumerate(lines):
        if re.fullmatch(r'\s*Examples?:{1,2}\s*', line):
            block = []
            for nxt in lines[i + 1:]:
                if nxt.strip() and not nxt[:1].isspace():
                    break
                block.append(nxt)
            # A docstring's backslash-newline joins lines: collapse the
            # indentation left inside the joined command.
            body = textwrap.dedent('\n'.join(
                re.sub(r'(?<=\S) {2,}', ' ', b) for b in block)).strip('\n')
            if body:
                return 'examples:\n' + textwrap.indent(body, '  ')
    return ''


def tool_parser(doc: Optional[str] = None,
                **kwargs: Any) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with :class:`ToolHelpFormatter`.

    Args:
        doc (str, optional): the tool's ``__doc__``; its first paragraph is
            the description and its ``Example::`` block the epilog (unless
            ``description`` / ``epilog`` are given).
        **kwargs: more ``ArgumentParser`` arguments (``epilog``, ``prog``).

    Returns:
        argparse.ArgumentParser: the parser.
    """
    kwargs.setdefault('description', tool_description(doc))
    kwargs.setdefault('epilog', tool_examples(doc) or None)
    kwargs.setdefault('formatter_class', ToolHelpFormatter)
    return argparse.ArgumentParser(**kwargs)

