# Copyright (c) mmlesion contributors. All rights reserved.
"""``mmlesion_cli.package_json``: the library's data files, read without
importing the library, are the very data the imported library reads."""
import importlib
import importlib.util
import inspect

import pytest

from mmlesion.apps.demo import DemoDataConfig
from mmlesion_cli import package_json


def test_the_tools_read_what_the_library_reads():
    shown = package_json('apps/demo/tool_defaults.json')
    assert set(shown) == {'DemoDataConfig'}
    defaults = DemoDataConfig()
    assert shown['DemoDataConfig']
    for name, value in shown['DemoDataConfig'].items():
        assert getattr(defaults, name) == value, name


#: Each ``tool_defaults.json`` the tools read, and the module reading it
#: for its definitions: an entry is a dataclass (or class) of the module,
#: its values the defaults of its keywords, or a constant of the module.
TOOL_DEFAULTS = {
    'apis/whole_scan/tool_defaults.json': {
        'DetectionSettings': 'mmlesion.apis.whole_scan.settings',
        'RunSettings': 'mmlesion.apis.whole_scan.settings',
        'Finishing': 'mmlesion.apis.whole_scan.settings',
        'WORKER_TYPES': 'mmlesion.apis.whole_scan.slices',
        'BACKENDS': 'mmlesion.apis.whole_scan.settings',
        'DICOM_MODES': 'mmlesion.apis.whole_scan.write_dicom',
    },
    'apps/whole_scan/tool_defaults.json': {
        'DimseSettings': 'mmlesion.apps.whole_scan.dimse_source',
        'SERVER_TIMEOUT_S': 'mmlesion.apps.whole_scan.server_source',
        'ShardSettings': 'mmlesion.apps.whole_scan.shards',
    },
    'datasets/transforms/tool_defaults.json': {
        'DEFAULT_PIXEL_SPACING': 'mmlesion.apis.whole_scan.settings',
    },
    'apps/own_data/tool_defaults.json': {
        'ConvertSettings': 'mmlesion.apps.own_data.convert',
        'DEFAULT_VAL_FRACTION': 'mmlesion.apps.own_data.convert',
        'DEFAULT_TEST_FRACTION': 'mmlesion.apps.own_data.convert',
        'DeepLesionExporter': 'mmlesion.apps.own_data.convert',
        'KEY_LESIONS': 'mmlesion.apps.own_data.deeplesion_export',
        'KEY_SLICES': 'mmlesion.apps.own_data.deeplesion_export',
        'BOX_COLUMNS': 'mmlesion.apps.own_data.scan_cases',
        'PRESETS': 'mmlesion.apps.own_data.presets',
    },
    'protocols/tool_defaults.json': {
        'Luna16FilesEval': 'mmlesion.protocols.luna16_eval',
    },
}


def _plain(value):
    """A value as JSON gives it back (tuples as lists, dict keys)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


@pytest.mark.parametrize('path', sorted(TOOL_DEFAULTS))
def test_the_settings_shown_are_the_library_settings(path):
    """Each value of a ``tool_defaults.json`` is the default or constant of
    the library's module (every entry of the file listed above)."""
    shown = package_json(path)
    assert set(shown) == set(TOOL_DEFAULTS[path])
    for name, module in TOOL_DEFAULTS[path].items():
        value = getattr(importlib.import_module(module), name)
        if inspect.isclass(value):
            params = inspect.signature(value).parameters
            assert shown[name], name
            for field, default in shown[name].items():
                assert params[field].default == default, (name, field)
                assert type(params[field].default) is type(default)
        elif name == 'PRESETS':  # names -> presets, in the file's order
            assert list(value) == shown[name]
            assert all(p.dataset in (None, n) for n, p in value.items())
        else:
            assert _plain(value) == shown[name], name


def test_missing_package_or_file_says_so(monkeypatch):
    with pytest.raises(FileNotFoundError, match='no_such.json'):
        package_json('reproduce/no_such.json')
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name: None)
    with pytest.raises(ImportError, match='mmlesion is not installed'):
        package_json('apps/demo/tool_defaults.json')
