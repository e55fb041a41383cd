# Copyright (c) mmlesion contributors. All rights reserved.
"""A method's steps reach a whole-scan run as objects its caller hands in
(:class:`~mmlesion.apis.whole_scan.settings.ModelAdjustment`,
:class:`~mmlesion.apis.whole_scan.settings.FindingRescorer`): any object
with their methods serves, the run records what they say, and LENS's
experts and FPR network are two such objects."""
import json
from pathlib import Path

import pytest

from mmlesion.methods.lens.fpr_rescore import LensFPRRescorer
from mmlesion.methods.lens.experts import LensExperts
from mmlesion.apis.whole_scan.run import run_volume_inference
from mmlesion.apis.whole_scan.settings import (DetectionSettings,
                                               FindingRescorer,
                                               ModelAdjustment, RunSettings)
from mmlesion.apis.whole_scan.write import format_summary
from tests.test_apis.whole_scan.test_findings_json import (StandInDetector,
                                                           stand_in_config,
                                                           write_scan)


class Flag:
    """An adjustment that sets ``flag`` in the config and on the model."""

    def __init__(self):
        self.names = []

    def adjust_config(self, cfg, cfg_name):
        self.names.append(cfg_name)
        cfg.model.flag = 3

    def adjust_model(self, model):
        model.flag = 3

    def record(self):
        return dict(flag=3)


class Halve:
    """A re-scorer that halves every score."""

    def __init__(self, path):
        self.files = dict(halve_weights=str(path), unused=None)
        self.device = None

    def load(self, device):
        self.device = device

    @property
    def name(self):
        return f'halve on {self.device}'

    def rescore(self, findings, resampled, show_progress):
        assert resampled.array.ndim == 3 and show_progress is False
        return [f.rescored(f.score / 2, s_det=f.score, s_half=.5)
                for f in reversed(findings)]


def _run(tmp_path: Path, name: str, **steps):
    scan = tmp_path / 'scan.mhd'
    if not scan.exists():
        write_scan(scan)
    model = StandInDetector()
    result = run_volume_inference(
        stand_in_config(), None, str(scan), out_dir=str(tmp_path / name),
        run_settings=RunSettings(
            detection=DetectionSettings(score_thr=.05, workers=0,
                                        show_progress=False),
            pixel_spacing=1., cfg_name='stand_in.py', **steps),
        model=model)
    record = json.loads((tmp_path / name / 'findings.json').read_text())
    return result, record, model


def test_the_run_uses_and_records_the_steps_it_is_given(tmp_path):
    weights = tmp_path / 'halve.pth'
    weights.write_bytes(b'0')
    flag, halve = Flag(), Halve(weights)
    assert isinstance(flag, ModelAdjustment)
    assert isinstance(halve, FindingRescorer)
    _, plain, _ = _run(tmp_path, 'plain')
    result, got, model = _run(tmp_path, 'steps', adjustments=[flag],
                              rescorer=halve)
    assert flag.names == ['stand_in.py'] and model.flag == 3
    assert list(got['settings'])[-2:] == ['fpr', 'flag']
    assert got['settings']['fpr'] == 'halve on cpu'
    assert plain['settings']['fpr'] is None
    assert 'flag' not in plain['settings']
    assert got['provenance']['halve_weights']['path'].endswith('halve.pth')
    assert 'unused' not in got['provenance']
    # the same findings, by decreasing halved score, the parts after it
    assert len(got['findings']) == len(plain['findings']) > 1
    for new, old in zip(got['findings'], plain['findings']):
        assert list(new)[:4] == ['id', 'score', 's_det', 's_half']
        assert new['s_det'] == old['score']
        assert new['score'] == round(old['score'] / 2, 6)
        assert new['bbox_voxel'] == old['bbox_voxel']
        assert {k: v for k, v in new.items()
                if k not in ('score', 's_det', 's_half', 'key_slice_png')
                } == {k: v for k, v in old.items()
                      if k not in ('score', 'key_slice_png')}
    first = result.findings[0]
    assert first.score_parts == dict(s_det=first.score_parts['s_det'],
                                     s_half=.5)
    line = next(line for line in format_summary(result).splitlines()
                if line.startswith('  #1:'))
    assert line.endswith(f" (s_DET {first.score_parts['s_det']:.3f}, "
                         's_HALF 0.500)')


def test_lens_steps_are_such_objects():
    experts = LensExperts([1])
    assert isinstance(experts, ModelAdjustment)
    assert experts.record() == dict(experts=[1])
    fpr = LensFPRRescorer('fpr.py', 'fpr.pth')
    assert isinstance(fpr, FindingRescorer)
    assert fpr.files == dict(fpr_config='fpr.py', fpr_checkpoint='fpr.pth')
    assert LensFPRRescorer.from_options(None, None) is None
    for config, checkpoint in (('fpr.py', None), (None, 'fpr.pth')):
        with pytest.raises(ValueError, match='go together'):
            LensFPRRescorer.from_options(config, checkpoint)
    with pytest.raises(RuntimeError, match='before load'):
        fpr.rescore([], None, False)
