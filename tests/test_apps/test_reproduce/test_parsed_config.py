# Copyright (c) mmlesion contributors. All rights reserved.
"""A plan parses each config file once per version."""
import os

from mmlesion.apps.reproduce import plan


def test_parsed_once_per_file_and_version(tmp_path, monkeypatch):
    cfg = tmp_path / 'a.py'
    cfg.write_text('train_cfg = dict(max_epochs=3)\n')
    first = plan.parsed_config(str(cfg))
    assert first.train_cfg.max_epochs == 3
    # the same file, by another spelling of its path: the same parse
    monkeypatch.chdir(tmp_path)
    assert plan.parsed_config('a.py') is first
    # a changed file is parsed again
    cfg.write_text('train_cfg = dict(max_epochs=5)\n')
    st = cfg.stat()
    os.utime(cfg, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert plan.parsed_config('a.py').train_cfg.max_epochs == 5
    # another file of the same name in another folder is its own config
    other = tmp_path / 'sub'
    other.mkdir()
    (other / 'a.py').write_text('train_cfg = dict(max_epochs=7)\n')
    monkeypatch.chdir(other)
    assert plan.parsed_config('a.py').train_cfg.max_epochs == 7


def test_epochs_with_options_leave_the_shared_parse_alone(tmp_path):
    from mmlesion.apps.reproduce import PlanContext
    from mmlesion.apps.reproduce.execute import trained_epochs
    cfg = tmp_path / 'b.py'
    cfg.write_text('train_cfg = dict(max_epochs=3)\n')
    ctx = PlanContext(str(tmp_path), cfg_options=['train_cfg.max_epochs=1'])
    assert trained_epochs(ctx, str(cfg)) == 1
    assert plan.parsed_config(str(cfg)).train_cfg.max_epochs == 3
