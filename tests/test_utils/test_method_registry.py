# Copyright (c) mmlesion contributors. All rights reserved.
"""The registry of each engine (:mod:`mmlesion.utils.method_registry`):
the methods' parts in the paper harness's, the whole-scan API's and the
whole-config check's registries; a part of the wrong type or without a
required field refused when it registers, naming the method and the field;
a field merged over the methods (a key given twice refused, naming both);
the whole-scan steps a run's options ask for and the flags behind them
(a renamed flag fails, naming the option)."""
import argparse
import json
from dataclasses import dataclass
from typing import Callable, FrozenSet, Mapping, Optional, Tuple

import pytest

from mmlesion.apis.whole_scan.method_steps import (WHOLE_SCAN_STEPS,
                                                   WholeScanMethod,
                                                   whole_scan_steps)
from mmlesion.apps.reproduce.paper_tables import (PAPER_TABLES, PaperTables,
                                                  paper_view)
from mmlesion.utils.configs.whole_config import CONFIG_KEYS, ConfigKeys
from mmlesion.utils.method_registry import (MethodPart, MethodRegistry,
                                            required)
from mmlesion_cli.method_flags import add_method_arguments


@dataclass(frozen=True)
class _Part(MethodPart):
    sizes: Mapping[str, Tuple[int, ...]] = required()
    names: FrozenSet[str] = frozenset()
    rate: float = 1.0
    make: Optional[Callable[[int], int]] = None


@pytest.fixture
def registered():
    """Register parts for one test (``registered(registry, part)``)."""
    added = []

    def register(registry, part):
        registry.register(part)
        added.append((registry, part.name))
        return part

    yield register
    for registry, name in added:
        registry.module_dict.pop(name, None)


def test_each_engine_has_the_methods_parts():
    # (and any method imported from outside, e.g. projects/toy)
    assert set(PAPER_TABLES.parts()) >= {'elixirnet', 'retinanet_lesion',
                                         'aggregated3d', 'lens'}
    assert set(CONFIG_KEYS.parts()) >= {'retinanet_lesion', 'aggregated3d',
                                        'lens'}
    assert 'elixirnet' not in CONFIG_KEYS.parts()
    assert set(WHOLE_SCAN_STEPS.parts()) >= {'lens'}


@pytest.mark.parametrize('fields,message', [
    (dict(sizes={'a': (1, 2)}, rate='fast'),
     "_Part of method 'toy': field 'rate' must be float, not str fast"),
    (dict(sizes={'a': [1, 2]}), "field 'sizes' must be Mapping"),
    (dict(sizes={'a': (1, 'x')}), "field 'sizes' must be Mapping"),
    (dict(sizes={}, names={'a'}), "field 'names' must be FrozenSet"),
    (dict(sizes={}, make=3), "field 'make' must be Optional"),
    (dict(), "_Part of method 'toy': field 'sizes' is required"),
])
def test_a_wrong_part_fails_when_made_naming_method_and_field(fields,
                                                               message):
    with pytest.raises(TypeError, match=message.replace('(', r'\(')):
        _Part('toy', **fields)
    part = _Part('toy', sizes={'a': (1, 2)}, names=frozenset({'b'}), rate=2,
                 make=abs)
    assert part.rate == 2


def test_the_engines_parts_are_checked_at_registration():
    with pytest.raises(TypeError, match="PaperTables of method 'toy': field "
                       "'step_times' must be Mapping"):
        PaperTables('toy', step_times={'toyd': 'half a second'})
    with pytest.raises(TypeError, match="ConfigKeys of method 'toy': field "
                       "'keys' must be Mapping"):
        ConfigKeys('toy', keys={'Toy': {'test_cfg': {'score_thr'}}})
    with pytest.raises(TypeError, match="WholeScanMethod of method 'toy': "
                       "field 'steps' is required"):
        WholeScanMethod('toy', add_arguments=print, settings=print)
    with pytest.raises(TypeError, match='registers a PaperTables here, not '
                       'ConfigKeys'):
        PAPER_TABLES.register(ConfigKeys('toy', keys={}))


def test_a_name_registered_twice_is_refused(registered):
    registry = MethodRegistry('toy parts', _Part)
    registered(registry, _Part('toy', sizes={}))
    with pytest.raises(KeyError, match="method 'toy' is already registered"):
        registry.register(_Part('toy', sizes={}))
    with pytest.raises(KeyError, match="unknown method 'other' in toy "
                       r"parts; registered: \['toy'\]"):
        registry.part('other')


def test_a_key_of_two_methods_is_refused(registered):
    view = paper_view('step_times')
    assert 'lens' in view
    registered(PAPER_TABLES, PaperTables('copycat', step_times={'lens': 1.0}))
    with pytest.raises(ValueError, match="'lens' is given by both 'copycat' "
                       "and 'lens'"):
        view['lens']


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    assert add_method_arguments(parser, 'whole_scan') == ['lens']
    return parser


def test_whole_scan_steps_of_the_options(registered):
    from mmlesion.methods.lens.experts import LensExperts
    from mmlesion.methods.lens.fpr_rescore import LensFPRRescorer
    parser = _parser()
    assert whole_scan_steps(parser.parse_args([])) == (
        (), None)
    adjust, rescorer = whole_scan_steps(parser.parse_args(
        ['--experts', '1', '--fpr-config', 'fpr.py', '--fpr-checkpoint',
         'fpr.pth']))
    assert adjust == (LensExperts([1]), )
    assert isinstance(rescorer, LensFPRRescorer)
    assert rescorer.files == dict(fpr_config='fpr.py',
                                  fpr_checkpoint='fpr.pth')
    registered(WHOLE_SCAN_STEPS, WholeScanMethod(
        'second', add_arguments=lambda parser: None,
        settings=lambda args: None, steps=lambda s: ((), object())))
    with pytest.raises(ValueError, match='one re-scorer per run'):
        whole_scan_steps(parser.parse_args(
            ['--fpr-config', 'fpr.py', '--fpr-checkpoint', 'fpr.pth']))


def test_a_renamed_flag_fails_loudly(monkeypatch):
    """A flag renamed in the parser but not in the settings (or a tool
    that never added the method's flags) is an error naming the option,
    never LENS silently off."""
    from mmlesion.methods.lens import flags
    args = _parser().parse_args(['--experts', '0'])
    del args.fpr_checkpoint  # as if renamed to --fpr-weights
    with pytest.raises(ValueError, match="method 'lens' reads the option "
                       "'fpr_checkpoint', which the tool's parser lacks"):
        whole_scan_steps(args)
    with pytest.raises(ValueError, match="'experts'"):
        whole_scan_steps(argparse.Namespace())
    assert flags.LensScanSettings.from_args(_parser().parse_args(
        ['--experts', '0', '2'])).experts == (0, 2)


def test_an_index_and_builders_that_differ_are_refused(tmp_path):
    from mmlesion.apps.reproduce.table_index import table_specs
    index = {'toy/t1': {'title': 'T1', 'rows': ['a']}}
    spec_file = str(tmp_path / 'tables.py')
    assert table_specs(spec_file, {'toy/t1': (None, {}, (), False)},
                       index)['toy/t1'].row_keys == ['a']
    with pytest.raises(ValueError, match=r"tables.py: tables "
                       r"\['toy/t1', 'toy/t2'\] are in TABLE_INDEX or"):
        table_specs(spec_file, {'toy/t2': (None, {}, (), False)}, index)


def test_a_flags_file_with_an_unknown_type_is_named(tmp_path, monkeypatch):
    """A method's ``flags.json`` is data: a type the CLI does not know
    fails naming the file and the option, it is never evaluated."""
    import mmlesion_cli.method_flags as method_flags
    home = tmp_path / 'methods' / 'toy'
    home.mkdir(parents=True)
    (home / 'flags.json').write_text(json.dumps({'whole_scan': {
        'group': 'toy', 'options': [{'flags': ['--n'], 'type': 'eval'}]}}))
    monkeypatch.setattr(method_flags, '_package_dir', lambda: str(tmp_path))
    with pytest.raises(ValueError, match=r"toy/flags.json: option \['--n'\]"
                       r": type 'eval' is not one of \['float', 'int'\]"):
        add_method_arguments(argparse.ArgumentParser(), 'whole_scan')
