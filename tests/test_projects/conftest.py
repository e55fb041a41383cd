# Copyright (c) mmlesion contributors. All rights reserved.
"""Fixtures of the tests of ``projects/`` (the laboratory beside the
library: synthetic studies, probes, config smoke runs and benchmarks)."""
import importlib.util
from pathlib import Path

import pytest

from mmlesion.testing import repo_root


def project_script(name: str) -> Path:
    """The one script ``projects/**/<name>.py`` (names are unique)."""
    found = sorted((repo_root() / 'projects').glob(f'**/{name}.py'))
    assert len(found) == 1, f'{name}.py: {found}'
    return found[0]


@pytest.fixture
def analysis_tool():
    """``analysis_tool(name)``: the script ``projects/**/<name>.py``
    imported as a module (its ``main`` not run)."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(
            f'_project_{name}', project_script(name))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    return load
