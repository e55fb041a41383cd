# Copyright (c) mmlesion contributors. All rights reserved.
"""Where a batch measures (RECIST) and writes its scans
(:class:`mmlesion.apis.whole_scan.settings.Finishing`): every schedule gives
the findings, RECIST measurements and pictures of the plain path (one scan
alone), and a finishing process that fails fails only its scan."""
import csv
import json
import multiprocessing
import os
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
from PIL import Image

from mmlesion.apps.whole_scan import batch as volume_batch
from mmlesion.apps.whole_scan.batch import (BatchOptions, Finishing,
                                            run_batch_inference)
from mmlesion.apis.whole_scan.infer import (ScanSteps, infer_volume,
                                            stack_result)
from mmlesion.apis.whole_scan.measure import measure_result
from mmlesion.apis.whole_scan.run import (run_volume_inference,
                                          volume_run_config)
from mmlesion.apps.whole_scan.scan_list import scan_folder_name
from mmlesion.apis.whole_scan.settings import DetectionSettings, RunSettings
from projects.study_demo.synthetic.volumes import generate_demo_volumes
from mmlesion.datasets.volumes import load_ct_volume
from mmlesion.testing import repo_root
from mmlesion.utils.distributed.forked_call import (ForkedCall,
                                                    ForkedCallError,
                                                    fork_available)
from projects.benchmarks.stand_in_detector import StandInDetector
from tests.helpers.volume_demo import DEMO_CFG

CFG_PATH = str(repo_root() / 'configs' / DEMO_CFG)
#: 1 mm pixels (about 60 px slices), no progress bars.
RUN = RunSettings(detection=DetectionSettings(show_progress=False),
                  pixel_spacing=1., cfg_name=DEMO_CFG)
needs_fork = pytest.mark.skipif(not fork_available(),
                                reason='finishing processes need fork')


def _model() -> StandInDetector:
    """Four boxes of 8-20 px per slice, inside a 60 px slice."""
    return StandInDetector(0., 4, centre_range=(20., 40.),
                           half_range=(4., 10.))


@pytest.fixture(scope='module')
def scans(tmp_path_factory) -> List[str]:
    """Three small synthetic chest scans (.mhd)."""
    root = tmp_path_factory.mktemp('finishing') / 'scans'
    generate_demo_volumes(root, seed=2, num_luna=3, num_kits=0, num_lits=0,
                          val_fraction=0., size_range=(72, 72),
                          num_slices_range=(10, 10))
    return sorted(str(p) for p in root.rglob('*.mhd'))


@pytest.fixture(scope='module')
def single(scans, tmp_path_factory) -> Path:
    """Each scan run alone (``tools/infer_volume.py SCAN``): the plain
    path."""
    out = tmp_path_factory.mktemp('single')
    model = _model()
    for scan in scans:
        run_volume_inference(CFG_PATH, None, scan,
                             out_dir=str(out / scan_folder_name(scan)),
                             run_settings=RUN, model=model)
    return out


def _findings(folder: Path) -> list:
    return json.loads((folder / 'findings.json').read_text())['findings']


def _pixels(folder: Path) -> Dict[str, np.ndarray]:
    return {str(p.relative_to(folder)): np.asarray(Image.open(p))
            for p in sorted(folder.rglob('*.png'))}


def test_measuring_later_gives_the_same_measurements(scans):
    """Detected without RECIST and measured afterwards: the findings of
    detecting and measuring at once."""
    settings = volume_run_config(CFG_PATH, RUN).settings
    volume = load_ct_volume(scans[0])
    model = _model()
    plain = infer_volume(model, volume, settings, RUN.detection)
    later = infer_volume(model, volume, settings, RUN.detection,
                         steps=ScanSteps(measure=False))
    assert later.findings and all(f.recist is None for f in later.findings)
    masks = measure_result(later, volume)
    assert [f.to_dict() for f in later.findings] == [
        f.to_dict() for f in plain.findings]
    sources = {f.recist.mask_source for f in plain.findings if f.recist}
    assert 'grabcut' in sources  # GrabCut ran, not only the fallback
    assert {m.finding_id for m in masks} == {
        f.id for f in plain.findings if f.recist}
    later.resampled = None
    with pytest.raises(ValueError, match='no resampled volume'):
        measure_result(later, volume)


def test_stacking_later_gives_the_same_findings(scans):
    """Detected without stacking and stacked afterwards
    (``stack_result``): the findings of stacking at once; stacking needs
    the resampled volume, and a stacked result stays as it is; boxes left
    unstacked cannot be measured or re-scored at once."""
    settings = volume_run_config(CFG_PATH, RUN).settings
    volume = load_ct_volume(scans[0])
    model = _model()
    at_once = infer_volume(model, volume, settings, RUN.detection,
                           steps=ScanSteps(measure=False))
    later = infer_volume(model, volume, settings, RUN.detection,
                         steps=ScanSteps(measure=False, stack=False))
    assert at_once.findings and at_once.slice_detections is None
    assert later.findings == [] and later.slice_detections is not None
    assert later.num_boxes_2d == at_once.num_boxes_2d
    resampled, later.resampled = later.resampled, None
    with pytest.raises(ValueError, match='no resampled volume'):
        stack_result(later, volume)
    later.resampled = resampled
    assert stack_result(later, volume) is later
    assert later.slice_detections is None
    assert [f.to_dict() for f in later.findings] == [
        f.to_dict() for f in at_once.findings]
    assert later.to_dict() == dict(at_once.to_dict(),
                                   detect_seconds=later.detect_seconds,
                                   slices_per_second=later.slices_per_second)
    before = [f.to_dict() for f in later.findings]
    stack_result(later, volume)  # already stacked: unchanged
    assert [f.to_dict() for f in later.findings] == before
    with pytest.raises(ValueError, match='unstacked'):
        infer_volume(model, volume, settings, RUN.detection,
                     ScanSteps(stack=False))


SCHEDULES = [
    pytest.param(Finishing(processes=0, recist_with_detection=True),
                 id='thread-recist-with-detection'),
    pytest.param(Finishing(processes=0), id='thread-recist-later'),
    pytest.param(Finishing(processes=1), id='1-process', marks=needs_fork),
    pytest.param(Finishing(processes=2), id='2-processes', marks=needs_fork),
    pytest.param(Finishing(processes=2, stack_with_detection=True,
                           read_ahead=1),
                 id='2-processes-stack-in-loop-read-ahead-1',
                 marks=needs_fork),
]


@pytest.mark.parametrize('finishing', SCHEDULES)
def test_every_schedule_gives_the_files_of_a_scan_alone(
        scans, single, tmp_path, finishing):
    """The same findings (RECIST included), candidates and pictures (pixel
    for pixel) as each scan run alone; scans.csv times each step."""
    out = tmp_path / 'batch'
    rows = run_batch_inference(CFG_PATH,
                               None,
                               scans,
                               str(out),
                               RUN,
                               options=BatchOptions(model=_model(),
                                                    finishing=finishing))
    assert [r.status for r in rows] == ['done'] * len(scans)
    for scan in scans:
        name = scan_folder_name(scan)
        expected = _findings(single / name)
        assert any(f['recist'] for f in expected)
        assert _findings(out / name) == expected, name
        assert (out / name / 'candidates.csv').read_bytes() == (
            single / name / 'candidates.csv').read_bytes()
        ours, theirs = _pixels(out / name), _pixels(single / name)
        assert sorted(ours) == sorted(theirs) and len(ours) > 1
        for rel, pixels in theirs.items():
            assert np.array_equal(ours[rel], pixels), (name, rel)
    with open(out / 'scans.csv', newline='') as f:
        table = list(csv.DictReader(f))
    for row in table:
        parts = [float(row[f'{k}_seconds'])
                 for k in ('load', 'detect', 'measure', 'write')]
        assert float(row['total_seconds']) == pytest.approx(sum(parts),
                                                            abs=2e-3)


def test_finishing_settings_are_checked():
    assert Finishing(processes=0).resolved_processes() == 0
    expected = min(2, len(os.sched_getaffinity(0))) if fork_available() \
        else 0
    assert Finishing().resolved_processes() == expected
    with pytest.raises(ValueError, match='>= 0'):
        Finishing(processes=-1)
    assert Finishing().niceness == 10
    for niceness in (-1, 20):
        with pytest.raises(ValueError, match='niceness must be 0..19'):
            Finishing(niceness=niceness)
    assert Finishing().read_ahead == 2
    with pytest.raises(ValueError, match='read_ahead must be >= 1'):
        Finishing(read_ahead=0)


@needs_fork
def test_finishing_processes_run_at_a_lower_priority(scans, tmp_path,
                                                     monkeypatch):
    """Each finishing process (and the threads it starts) runs with the
    batch's niceness plus ``Finishing.niceness``; the batch's process
    keeps its own."""
    from concurrent.futures import ThreadPoolExecutor
    own = os.nice(0)
    seen = []
    original = volume_batch._finish_task

    def finish_task(*args):
        task = original(*args)

        def niceness_then_task():
            with ThreadPoolExecutor(1) as pool:  # a thread it starts
                in_thread = pool.submit(os.nice, 0).result()
            return dict(task(), niceness=(os.nice(0), in_thread))

        return niceness_then_task

    monkeypatch.setattr(volume_batch, '_finish_task', finish_task)
    monkeypatch.setattr(
        volume_batch, '_finish',
        lambda row, pending, *a: seen.append(pending.result()['niceness']))
    for niceness in (3, 0):
        seen.clear()
        run_batch_inference(CFG_PATH,
                            None,
                            scans[:2],
                            str(tmp_path / f'n{niceness}'),
                            RUN,
                            options=BatchOptions(model=_model(),
                                                 finishing=Finishing(
                                                     processes=2,
                                                     niceness=niceness)))
        expected = min(own + niceness, 19)
        assert seen == [(expected, expected)] * 2, niceness
    assert os.nice(0) == own


class _Unpicklable(Exception):
    """An error whose pickle fails (a lock among its arguments)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.lock = multiprocessing.Lock().__enter__  # a bound method


@needs_fork
def test_a_failing_process_fails_only_its_scan(scans, tmp_path,
                                               monkeypatch):
    """The first scan is written in its process while the model detects
    the second; a process's error (sent back, or unpicklable, or a process
    that dies) fails only its scan; the others are done."""
    context = multiprocessing.get_context('fork')
    detecting = [context.Event() for _ in scans]  # shared with the forks
    overlapped = context.Value('i', 0)
    detect, write = volume_batch.detect_scan, volume_batch.write_scan

    def detect_scan(model, volume, *args, **kwargs):
        detecting[scans.index(str(volume.meta['path']))].set()
        return detect(model, volume, *args, **kwargs)

    def write_scan(result, *args):
        i = scans.index(result.scan)
        assert os.getpid() != parent
        if i == 0 and detecting[1].wait(timeout=60):
            overlapped.value = 1  # the next scan was detected meanwhile
        if i == 1:
            raise OSError(28, 'No space left on device')
        if i == 2 and failure == 'unpicklable':
            raise _Unpicklable('cannot travel')
        if i == 2:
            os._exit(3)  # as if killed
        return write(result, *args)

    parent = os.getpid()
    monkeypatch.setattr(volume_batch, 'detect_scan', detect_scan)
    monkeypatch.setattr(volume_batch, 'write_scan', write_scan)
    for failure in ('unpicklable', 'dies'):
        rows = run_batch_inference(CFG_PATH, None, scans,
                                   str(tmp_path / failure), RUN,
                                   BatchOptions(
                                       model=_model(),
                                       finishing=Finishing(processes=2)))
        assert [r.status for r in rows] == ['done', 'failed', 'failed']
        assert 'No space left on device' in rows[1].error
        if failure == 'unpicklable':
            assert rows[2].error == '_Unpicklable: cannot travel'
        else:
            assert 'ended without an answer (exit code 3)' in rows[2].error
        assert (tmp_path / failure / rows[0].folder /
                'findings.json').is_file()
    assert overlapped.value == 1


@needs_fork
def test_a_forked_call_sees_this_memory_and_sends_back_its_value():
    """The child reads what the parent holds (no pickle of the callable);
    the value or the error comes back; the parent's collector is left as
    it was (unfrozen here: the suite freezes what its collection made)."""
    import gc
    big = np.arange(1_000_000, dtype=np.int64)
    gc.unfreeze()
    try:
        assert ForkedCall(lambda: int(big.sum())).result() == int(big.sum())
        assert gc.get_freeze_count() == 0
    finally:
        gc.freeze()

    def fails():
        raise KeyError('nope')

    def fails_unpicklably():
        raise _Unpicklable('cannot travel')

    with pytest.raises(KeyError, match='nope'):
        ForkedCall(fails).result()
    with pytest.raises(ForkedCallError, match='_Unpicklable: cannot'):
        ForkedCall(fails_unpicklably).result()


def _table(path: Path) -> List[dict]:
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize('finishing', [
    pytest.param(Finishing(processes=0), id='thread'),
    pytest.param(Finishing(processes=1), id='1-process', marks=needs_fork)])
def test_scans_csv_says_done_once_the_files_are_in_place(
        scans, tmp_path, monkeypatch, finishing):
    """While the model detects the second scan, the first scan's files are
    written by its finisher, which records it ``done`` in scans.csv at
    once: the file a kill at that moment leaves is true (was: ``queued``
    until the batch collected the finisher, after the next detection);
    the batch's own record of it and of a failed scan keep that row."""
    out = tmp_path / 'batch'
    detect = volume_batch.detect_scan
    seen = {}

    def detect_scan(model, volume, *args, **kwargs):
        i = scans.index(str(volume.meta['path']))
        if i == 1:  # the first scan's finisher runs meanwhile
            for _ in range(600):
                table = _table(out / 'scans.csv')
                if table[0]['status'] != 'queued':
                    break
                time.sleep(.1)
            seen['at-kill'] = table
        if i == 2:
            raise ValueError('not CT')
        return detect(model, volume, *args, **kwargs)

    monkeypatch.setattr(volume_batch, 'detect_scan', detect_scan)
    rows = run_batch_inference(CFG_PATH, None, scans, str(out), RUN,
                               BatchOptions(model=_model(),
                                            finishing=finishing))
    assert [r['status'] for r in seen['at-kill']] == ['done', 'queued',
                                                      'queued']
    assert (out / rows[0].folder / 'findings.json').is_file()
    first = seen['at-kill'][0]
    assert first['findings'] == str(len(_findings(out / rows[0].folder)))
    assert float(first['total_seconds']) > 0
    table = _table(out / 'scans.csv')
    assert [r['status'] for r in table] == [r.status for r in rows] == [
        'done', 'done', 'failed']
    assert table[2]['error'] == 'not CT'
    assert table[0]['findings'] == first['findings']
