# Copyright (c) mmlesion contributors. All rights reserved.
"""``projects/mutation/mutation_test.py`` names the real-data folder for the tests
it runs from ``mutants/`` as the suite names it (the tool knows no folder
of its own). Its child (``python -c``) forks from the suite's zygote
(``code_forked``): what it imports is not the question here."""
import importlib.util
import os

import pytest

from mmlesion.testing import repo_root
from mmlesion.utils.data_roots import SHARED_DATA_ENV
from tests.helpers.data_roots import LAB_SHARED_DATA

pytestmark = pytest.mark.usefixtures('code_forked')
TOOL = repo_root() / 'projects' / 'mutation' / 'mutation_test.py'


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('_mutation_test', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_data_names_no_folder(tool, tmp_path, monkeypatch):
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path))
    tool.name_test_data(without_data=True)
    assert os.environ[SHARED_DATA_ENV] == str(tool.ROOT / 'mutants' /
                                              'no-data')


def test_a_named_folder_is_kept(tool, tmp_path, monkeypatch):
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path))
    tool.name_test_data(without_data=False)
    assert os.environ[SHARED_DATA_ENV] == str(tmp_path)


@pytest.mark.parametrize('named', [None, 'absent'])
def test_else_the_suite_names_its_folder(tool, tmp_path, monkeypatch, named):
    if named is None:
        monkeypatch.delenv(SHARED_DATA_ENV, raising=False)
    else:
        monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path / named))
    tool.name_test_data(without_data=False)
    expected = (str(LAB_SHARED_DATA.resolve()) if LAB_SHARED_DATA.is_dir()
                else (None if named is None else str(tmp_path / named)))
    assert os.environ.get(SHARED_DATA_ENV) == expected
