# Copyright (c) mmlesion contributors. All rights reserved.
"""Fixtures of the analysis-tool tests."""
import importlib.util

import pytest

from mmlesion.testing import repo_root


@pytest.fixture
def analysis_tool():
    """``analysis_tool(name)``: ``tools/analysis_tools/<name>.py`` imported
    as a module."""

    def load(name: str):
        path = repo_root() / 'tools' / 'analysis_tools' / f'{name}.py'
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    return load
