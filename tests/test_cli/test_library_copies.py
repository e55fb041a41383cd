# Copyright (c) mmlesion contributors. All rights reserved.
"""The values ``mmlesion_cli`` copies from the library agree with it.

``mmlesion_cli`` does not import ``mmlesion`` (a tool's ``--help`` must not
wait for torch) and ``mmlesion`` does not import ``mmlesion_cli`` (the
library reads no command line): where a parser needs a value that the
library owns (an environment variable's name, a default, the tables it
plans), the command-line package holds a copy. Each copy is named here
with the library's value it must equal, so that they cannot drift apart.
"""
import argparse
import importlib

import pytest

#: ``(command-line module, name, library module, name)`` of each copy.
COPIES = [
    ('mmlesion_cli.common_args', 'TRUST_ENV',
     'mmlesion.utils.checkpoint_loader', 'TRUST_ENV'),
    ('mmlesion_cli.common_args', 'FORCE_CT_ENV',
     'mmlesion.datasets.volumes.scan_switches', 'FORCE_CT_ENV'),
    ('mmlesion_cli.common_args', 'RESAMPLE_NONUNIFORM_ENV',
     'mmlesion.datasets.volumes.scan_switches', 'RESAMPLE_NONUNIFORM_ENV'),
    ('mmlesion_cli.common_args', 'ALLOW_OUTSIDE_DATA_ENV',
     'mmlesion.datasets.volumes.scan_switches', 'ALLOW_OUTSIDE_DATA_ENV'),
    ('mmlesion_cli.common_args', 'MIN_WARMUP',
     'mmlesion.utils.benchmark_timing', 'MIN_WARMUP'),
    ('mmlesion_cli.common_args', 'MIN_REPEATS',
     'mmlesion.utils.benchmark_timing', 'MIN_REPEATS'),
    ('mmlesion_cli.common_args', 'SOFT_TISSUE_WINDOW',
     'mmlesion.visualization.lesion_visualizer', 'SOFT_TISSUE_WINDOW'),
    ('mmlesion_cli.converter_defaults', 'DEFAULT_VAL_FRACTION',
     'mmlesion.datasets.converters.common', 'DEFAULT_VAL_FRACTION'),
    ('mmlesion_cli.converter_defaults', 'DEFAULT_TEST_FRACTION',
     'mmlesion.datasets.converters.common', 'DEFAULT_TEST_FRACTION'),
]


def _value(module: str, name: str):
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize(
    'cli_module,cli_name,lib_module,lib_name', COPIES,
    ids=[f'{c}.{n}=={m}.{k}' for c, n, m, k in COPIES])
def test_copy_equals_the_library_value(cli_module, cli_name, lib_module,
                                       lib_name):
    copy = _value(cli_module, cli_name)
    own = _value(lib_module, lib_name)
    assert type(copy) is type(own) and copy == own, (
        f'{cli_module}.{cli_name} = {copy!r} but the library has '
        f'{lib_module}.{lib_name} = {own!r}: change the copy')


def test_reproduce_index_equals_the_library_tables():
    """``mmlesion_cli.reproduce_index.TABLE_INDEX`` (``tools/reproduce.py
    --help`` and its choices) == ``mmlesion.reproduce.table_index`` and the
    tables ``mmlesion.reproduce.tables.TABLES`` plans."""
    from mmlesion.reproduce.table_index import TABLE_INDEX as OWN
    from mmlesion.reproduce.tables import TABLES
    from mmlesion_cli.reproduce_index import TABLE_INDEX as COPY
    assert list(COPY) == list(OWN) and set(COPY) == set(TABLES)
    for name, entry in COPY.items():
        assert (entry.title, entry.rows) == (OWN[name].title, OWN[name].rows)
        assert (entry.title, entry.rows) == (TABLES[name].title,
                                             TABLES[name].row_keys), name


@pytest.mark.parametrize('warmup,repeats', [(w, r) for w in (-1, 0, 1, 2)
                                            for r in (0, 1, 2, 3)])
def test_check_timing_refuses_what_the_library_refuses(warmup, repeats):
    """The tools' parse-time check (``mmlesion_cli.common_args``) and the
    library's (``mmlesion.utils.benchmark_timing``) accept and refuse the
    same counts, with the same message."""
    from mmlesion.utils.benchmark_timing import check_timing as own
    from mmlesion_cli.common_args import check_timing as copy

    def outcome(check):
        try:
            check(warmup, repeats)
        except ValueError as err:
            return str(err)
        return None

    assert outcome(copy) == outcome(own)


#: ``(flag, its variable in mmlesion_cli.common_args, what it turns on in
#: the library)`` of each environment switch.
SWITCHES = [
    ('--trust-checkpoint', 'TRUST_ENV', 'checkpoints_trusted'),
    ('--force-ct', 'FORCE_CT_ENV', 'check_modality'),
    ('--resample-nonuniform', 'RESAMPLE_NONUNIFORM_ENV',
     'resample_nonuniform'),
    ('--allow-outside-data', 'ALLOW_OUTSIDE_DATA_ENV', 'allow_outside_data'),
]


@pytest.mark.parametrize('flag,env,switch', SWITCHES)
def test_a_switch_given_reaches_the_library(flag, env, switch, monkeypatch):
    """Each environment switch of the tools turns on what the library
    reads, and only that (the variable's name and its value ``1`` agree)."""
    from mmlesion.datasets.volumes.scan_switches import scan_check_defaults
    from mmlesion.utils.checkpoint_loader import checkpoints_trusted
    from mmlesion_cli import common_args

    def state():
        return dict(scan_check_defaults(),
                    checkpoints_trusted=checkpoints_trusted())

    for _, name, _ in SWITCHES:  # all off; undone after the test
        monkeypatch.setenv(getattr(common_args, name), '0')
    before = state()
    parser = argparse.ArgumentParser()
    common_args.add_trust_checkpoint_argument(parser)
    common_args.add_scan_check_arguments(parser)
    parser.parse_args([flag])  # the action sets its variable to 1
    assert getattr(common_args, env) in parser.format_help()
    after = state()
    assert {k for k in after if after[k] != before[k]} == {switch}
