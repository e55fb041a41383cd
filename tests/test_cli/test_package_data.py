# Copyright (c) mmlesion contributors. All rights reserved.
"""``mmlesion_cli.package_json(s)``: the library's data files, read
without importing the library, are the very files the imported library
reads."""
import importlib.util

import pytest

from mmlesion.datasets.demo import DemoDataConfig
from mmlesion.datasets.demo.settings import DemoVolumeConfig
from mmlesion.reproduce.table_index import TABLE_INDEX
from mmlesion_cli import package_json, package_jsons


def test_the_tools_read_what_the_library_reads():
    index = package_jsons('methods/*/table_index.json')
    assert list(index) == list(TABLE_INDEX)  # the paper's order kept
    assert {k: tuple(v.values()) for k, v in index.items()} == {
        k: (v.title, v.rows) for k, v in TABLE_INDEX.items()}
    shown = package_json('datasets/demo/tool_defaults.json')
    for cls in (DemoDataConfig, DemoVolumeConfig):
        defaults = cls()
        assert shown[cls.__name__], cls
        for name, value in shown[cls.__name__].items():
            assert getattr(defaults, name) == value, (cls, name)


def test_missing_package_or_file_says_so(monkeypatch):
    with pytest.raises(FileNotFoundError, match='no_such.json'):
        package_json('reproduce/no_such.json')
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name: None)
    with pytest.raises(ImportError, match='mmlesion is not installed'):
        package_json('datasets/demo/tool_defaults.json')
    with pytest.raises(ImportError, match='mmlesion is not installed'):
        package_jsons('methods/*/table_index.json')
