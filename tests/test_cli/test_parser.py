# Copyright (c) mmlesion contributors. All rights reserved.
"""``mmlesion_cli.tool_parser``: whole description, examples, defaults."""
from mmlesion_cli import tool_description, tool_examples, tool_parser

DOC = """Do a thing to every scan of a folder,
described in a sentence over two lines.

Example::

    python tools/x.py data/ \\
        --out out.json
    python tools/x.py data/ --quick   # a check

More text that is not the description.
"""


def test_description_is_the_whole_first_paragraph():
    assert tool_description(DOC) == (
        'Do a thing to every scan of a folder,\n'
        'described in a sentence over two lines.')
    assert tool_description(None) == ''
    # a paragraph ending in '::' brings the commands it introduces
    doc = 'Prints the times::\n\n    python x.py\n\nMore.'
    assert tool_description(doc) == 'Prints the times:\n\n    python x.py'


def test_examples_block():
    assert tool_examples(DOC).splitlines() == [
        'examples:', '  python tools/x.py data/ \\', '      --out out.json',
        '  python tools/x.py data/ --quick # a check'
    ]
    # a docstring's backslash-newline (not escaped) joins the lines; the
    # indentation left inside the command is closed up
    joined = 'X.\n\nExample::\n\n    python x.py a         --out b\n'
    assert tool_examples(joined) == 'examples:\n  python x.py a --out b'
    assert tool_examples('No examples here.') == ''


def test_help_shows_defaults_and_keeps_commands():
    parser = tool_parser(DOC, prog='x.py')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--zero', type=float, default=0., help='a zero')
    parser.add_argument('--flag', action='store_true', help='a switch')
    parser.add_argument('--name', help='unset by default')
    parser.add_argument(
        '--own', default=3, help='names it itself (default %(default)s)')
    text = parser.format_help()
    assert 'random seed (default: 0)' in text
    assert 'a zero (default: 0.0)' in text
    assert 'a switch\n' in text and 'unset by default\n' in text
    assert text.count('(default 3)') == 1 and '(default: 3)' not in text
    assert 'described in a sentence over two lines.' in text
    assert '  python tools/x.py data/ \\\n      --out out.json\n' in text
