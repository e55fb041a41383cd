# Copyright (c) mmlesion contributors. All rights reserved.
"""What the engines read of the registered methods
(:mod:`mmlesion.utils.method_spec`): every method's spec, a field merged
over them (a key given twice refused, naming both), and the whole-scan
steps a run's options ask for (LENS's experts and FPR re-scorer)."""
from argparse import Namespace

import pytest

from mmlesion.registry import METHODS
from mmlesion.utils.method_spec import (MethodSpec, MethodView,
                                        registered_methods, whole_scan_steps)


@pytest.fixture
def extra_method():
    """Register a method for one test (``register(name, **fields)``)."""
    added = []

    def register(name, **fields):
        METHODS.register_module(name=name,
                                module=lambda: MethodSpec(name, **fields))
        added.append(name)

    yield register
    for name in added:
        METHODS.module_dict.pop(name, None)


def test_the_four_methods_are_registered():
    assert set(registered_methods()) >= {'elixirnet', 'retinanet_lesion',
                                         'aggregated3d', 'lens'}


def test_a_key_of_two_methods_is_refused(extra_method):
    view = MethodView('step_times')
    assert 'lens' in view
    extra_method('copycat', step_times={'lens': 1.0})
    with pytest.raises(ValueError, match="'lens' is given by both 'copycat' "
                       "and 'lens'"):
        view['lens']


def test_a_function_returning_no_spec_is_named(extra_method):
    METHODS.register_module(name='broken', module=lambda: {'name': 'x'})
    try:
        with pytest.raises(TypeError, match=r"METHODS\['broken'\]"):
            registered_methods()
    finally:
        METHODS.module_dict.pop('broken')


def test_whole_scan_steps_of_the_options(extra_method):
    from mmlesion.methods.lens.experts import LensExperts
    from mmlesion.methods.lens.fpr_rescore import LensFPRRescorer
    none = Namespace(experts=None, fpr_config=None, fpr_checkpoint=None)
    assert whole_scan_steps(none) == ((), None)
    adjust, rescorer = whole_scan_steps(Namespace(
        experts=[1], fpr_config='fpr.py', fpr_checkpoint='fpr.pth'))
    assert adjust == (LensExperts([1]), )
    assert isinstance(rescorer, LensFPRRescorer)
    extra_method('second', whole_scan_steps=lambda options: ((), object()))
    with pytest.raises(ValueError, match='one re-scorer per run'):
        whole_scan_steps(Namespace(experts=None, fpr_config='fpr.py',
                                   fpr_checkpoint='fpr.pth'))


def test_an_index_and_builders_that_differ_are_refused(tmp_path):
    from mmlesion.apps.reproduce.table_index import table_specs
    index = {'toy/t1': {'title': 'T1', 'rows': ['a']}}
    spec_file = str(tmp_path / '__init__.py')
    assert table_specs(spec_file, {'toy/t1': (None, {}, (), False)},
                       index)['toy/t1'].row_keys == ['a']
    with pytest.raises(ValueError, match=r"__init__.py: tables "
                       r"\['toy/t1', 'toy/t2'\] are in TABLE_INDEX or"):
        table_specs(spec_file, {'toy/t2': (None, {}, (), False)}, index)
