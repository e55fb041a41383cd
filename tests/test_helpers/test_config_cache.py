# Copyright (c) mmlesion contributors. All rights reserved.
"""The suite's memoized metafile lookup gives mmengine's answers: the same
model entry, the same error for a base that is no model."""
import pytest
from mmengine.config import utils
from mmengine.utils import get_installed_path

from tests.helpers.config_cache import memoize_metafile_lookup


def test_same_answers_as_mmengine():
    memoize_metafile_lookup()  # conftest did; idempotent
    lookup = utils._get_cfg_metainfo
    assert lookup.memoized
    mmdet = get_installed_path('mmdet')
    model = 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'  # an index key
    assert lookup(mmdet, model) == lookup.original(mmdet, model)
    assert lookup(mmdet, model)['Config'].endswith(model)
    base = '_base_/models/faster-rcnn_r50_fpn'
    for _ in range(2):  # computed once, raised each time
        with pytest.raises(ValueError) as memo:
            lookup(mmdet, base)
        with pytest.raises(ValueError) as real:
            lookup.original(mmdet, base)
        assert str(memo.value) == str(real.value)


def test_each_metafile_is_parsed_once(monkeypatch):
    """Parsed up front (the zygote does, before it forks), a lookup of a
    config not looked up before reads no YAML, and still gives mmengine's
    answer."""
    import uuid

    import yaml
    memoize_metafile_lookup(parse_now=True)
    lookup = utils._get_cfg_metainfo
    mmdet = get_installed_path('mmdet')
    unseen = f'_base_/models/{uuid.uuid4().hex}'  # no model: an error

    def no_yaml(*args, **kwargs):
        raise AssertionError('a metafile parsed again')

    with monkeypatch.context() as m:
        m.setattr(yaml, 'load', no_yaml)
        with pytest.raises(ValueError) as memo:
            lookup(mmdet, unseen)
    with pytest.raises(ValueError) as real:
        lookup.original(mmdet, unseen)
    assert str(memo.value) == str(real.value)


def test_an_installed_package_is_found_once(monkeypatch):
    """mmengine's ``is_installed`` (a reload of ``pkg_resources`` each
    call) answers a package found installed from memory; a package not
    found is looked up each time."""
    import importlib

    from mmengine.config import config
    memoize_metafile_lookup(parse_now=True)
    calls = []
    reload = importlib.reload
    monkeypatch.setattr(importlib, 'reload',
                        lambda m: calls.append(m) or reload(m))
    assert config.is_installed('mmdet') and calls == []
    assert not config.is_installed('no_such_package_xyz')
    assert not config.is_installed('no_such_package_xyz')
    assert len(calls) == 2
