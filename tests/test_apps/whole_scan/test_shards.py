# Copyright (c) mmlesion contributors. All rights reserved.
"""A batch sharded over local processes (tools/infer_volume.py --jobs N;
mmlesion.apps.whole_scan.shards): one process killed midway, its scans
retried, a broken scan failed with its reason; the same command again
(the same scans as a folder tree, --scan-tree) stores nothing twice."""
import csv
import json
import shutil
import time
from pathlib import Path
from typing import Optional

import pytest
import torch

from mmlesion.apps.whole_scan.scan_list import find_scans
from mmlesion.apps.whole_scan.shards import (ShardedRun, ShardSettings,
                                             ShardWork,
                                             plan_shards,
                                             run_sharded_inference)
from mmlesion.utils.distributed.forked_call import fork_available
from tests.helpers.tool_modules import load_tool
from tests.helpers.volume_demo import scans_and_random_checkpoint
from .test_batch import CFG_PATH, QUIET


@pytest.fixture(scope='module')
def scans_and_checkpoint(tmp_path_factory):
    scans, ckpt = scans_and_random_checkpoint(
        tmp_path_factory, seed=5, num_luna=4, size_range=(48, 56),
        num_slices_range=(8, 10))
    return [str(s) for s in scans], ckpt


def _table(path: Path) -> list:
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def check_every_scan_once(out: Path, scans: list,
                          bad: Optional[str] = None) -> dict:
    """Each good scan's findings.json in exactly one shard folder, the
    merged tables complete and without duplicates, the broken scan
    (``bad``) failed with its one-line reason; returns the result files'
    modification times."""
    names = [Path(s).name.split('.mhd')[0] for s in scans]
    stored = sorted(p.parent.name for p in out.glob('shard_*/*/'
                                                    'findings.json'))
    assert stored == sorted(names)
    assert not list(out.glob('shard_*/.mmlesion-tmp-*'))
    rows = {r['folder']: r for r in _table(out / 'scans.csv')}
    assert sorted(rows) == sorted(names + (['broken'] if bad else []))
    assert all(rows[n]['status'] == 'done' for n in names)
    if bad:
        assert rows['broken']['status'] == 'failed'
        assert bad in rows['broken']['error'] and '\n' not in \
            rows['broken']['error']
    found = _table(out / 'findings.csv')
    keys = [(f['folder'], f['finding']) for f in found]
    assert len(keys) == len(set(keys))
    for name in names:
        js = json.loads(next(out.glob(f'shard_*/{name}/findings.json'))
                        .read_text())
        assert [f['finding'] for f in found if f['folder'] == name] == [
            str(f['id']) for f in js['findings']]
        assert int(rows[name]['findings']) == len(js['findings'])
    assert found  # something was compared
    page = (out / 'summary.html').read_text()
    assert 'data:image/png;base64,' in page
    assert f'{int(bool(bad))} failed' in page
    assert (out / 'summary.png').read_bytes()[:4] == b'\x89PNG'
    return {p: p.stat().st_mtime_ns for p in out.glob('shard_*/*/*.json')}


def test_a_killed_shard_is_redone_and_a_rerun_stores_nothing_twice(
        scans_and_checkpoint, tmp_path, capsys):
    scans, ckpt = scans_and_checkpoint
    tree = tmp_path / 'tree'  # a folder tree of the same scans
    tree.mkdir()
    for scan in map(Path, scans):
        for ext in ('.mhd', '.raw'):
            shutil.copy(scan.with_suffix(ext), tree)
    scans = [str(tree / Path(scan).name) for scan in scans]
    bad = tree / 'broken.nii.gz'
    bad.write_bytes(b'not a nifti file')
    out = tmp_path / 'out'
    torch.set_num_threads(1)
    killed = []

    def kill_shard_0(progress):
        """Shard 0 (scans 0, 2, broken) killed once its first scan is
        done and it is still running."""
        job = progress.running.get(0)
        if progress.attempt == 0 and not killed and \
                progress.by_shard[0] >= 1 and job and not job.done():
            job.kill()
            while not job.done():
                time.sleep(0.05)
            killed.append({p.parent.name for p in out.glob(
                'shard_000/*/findings.json')})

    from mmlesion.utils.configs.loading import load_config
    items = find_scans(tree)  # the four scans by name, then the broken
    assert [i.scan for i in items] == sorted(scans) + [str(bad)]
    rows = run_sharded_inference(items, ShardedRun(
        load_config(CFG_PATH), str(ckpt), str(out), QUIET,
        ShardSettings(jobs=2, poll_seconds=0.1), log=lambda line: None,
        on_progress=kill_shard_0))
    assert killed, 'shard 0 ended before it could be killed'
    assert [r.shard for r in rows] == [0, 1, 0, 1, 0]
    broken = rows[4]
    assert broken.status == 'failed' and broken.attempts == 2
    # the killed shard's scans not finished in round 1 ran again
    for row in rows[:4]:  # the killed shard's unfinished: 2
        assert row.attempts == 1 + (row.shard == 0 and
                                    row.folder not in killed[0]), row
    assert all(r.attempts == 1 for r in rows if r.shard == 1)
    times = check_every_scan_once(out, scans, str(bad))
    tables = {n: (out / n).read_bytes() for n in ('findings.csv',)}
    seconds = {r['folder']: r['total_seconds']
               for r in _table(out / 'scans.csv') if r['status'] == 'done'}
    # blank only for a scan whose files moved in as its job was killed
    assert sum(float(v or 0) > 0 for v in seconds.values()) >= 3

    # the same command again, now through the tool with 3 jobs and the
    # folder tree (the same items): the plan keeps every scan's shard,
    # finished scans are not run again
    tool = load_tool('infer_volume.py')
    code = tool.main([CFG_PATH, str(ckpt), '--scan-tree', str(tree),
                      '--out-dir', str(out), '--score-thr', '0.01',
                      '--jobs', '3'])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    stdout = captured.out
    assert f'failed   {bad}: ' in stdout
    assert '5 scans: 4 done, 1 failed' in stdout
    assert check_every_scan_once(out, scans, str(bad)) == times
    assert (out / 'findings.csv').read_bytes() == tables['findings.csv']
    assert {r['folder']: r['total_seconds'] for r in _table(
        out / 'scans.csv') if r['status'] == 'done'} == seconds


def test_the_plan_keeps_shards_and_deals_new_scans(tmp_path):
    assert plan_shards(['a', 'b', 'c'], tmp_path, 2) == [0, 1, 0]
    assert plan_shards(['c', 'd', 'e', 'a'], tmp_path, 4) == [0, 1, 2, 0]
    (tmp_path / 'shards.json').write_text('[1, 2]')
    with pytest.raises(ValueError, match='shards.json: not a shard plan'):
        plan_shards(['a'], tmp_path, 1)
    with pytest.raises(ValueError, match='--slurm needs --partition'):
        ShardSettings(launcher='slurm').check()


@pytest.mark.parametrize('argv, message', [
    (['a.nii', '--jobs', '2'], '--jobs shards a batch'),
    (['a.nii', 'b.nii', '--slurm'], '--slurm runs the shards of --jobs'),
    (['--dicomweb', 'http://pacs/dicom-web', '--scan-tree', 'a'],
     '--dicomweb takes its scans from the server: give no --scan-tree'),
])
def test_shard_options_are_checked(argv, message, capsys):
    tool = load_tool('infer_volume.py')
    with pytest.raises(SystemExit):
        tool.parse_args([CFG_PATH, 'ckpt.pth', *argv, '--out-dir', 'o'])
    assert message in capsys.readouterr().err


def test_a_series_job_is_pickled_without_the_password(monkeypatch):
    """A Slurm job's pickle (in OUT/logs/) holds no DICOMweb password; the
    job reads it from its environment."""
    import pickle

    from mmlesion.apps.whole_scan.dicomweb_source import DicomWebSettings
    from mmlesion.apps.whole_scan.server_shards import SeriesWork
    from mmlesion.apps.whole_scan.server_source import FoundSeries, SeriesRef
    work = SeriesWork(DicomWebSettings('http://pacs/dicom-web', user='u',
                                       password='s3cret'),
                      FoundSeries([SeriesRef('1.2', '1.2.3', 'CT'),
                                   SeriesRef('1.2', '1.2.4', 'CT')]))
    data = pickle.dumps(work.only(['1.2.4']))
    assert b's3cret' not in data
    job = pickle.loads(data)
    assert [i.folder for i in job.items()] == ['1.2.4']
    assert work.source.password == 's3cret'  # the parent keeps it


def test_a_series_is_finished_once_its_results_are_stored(tmp_path):
    """A series with results whose store failed is not finished (its shard
    runs it again: only the store is tried again); the reason is the
    shard's server.csv line, else its scans.csv line."""
    from mmlesion.apps.whole_scan.dicomweb_batch import (
        SERVER_SUMMARY, ServerRow, write_server_summary)
    from mmlesion.apps.whole_scan.dicomweb_source import DicomWebSettings
    from mmlesion.apps.whole_scan.server_shards import SeriesWork
    from mmlesion.apps.whole_scan.server_source import FoundSeries, SeriesRef
    refs = [SeriesRef('1.2', f'1.2.{i}', 'CT') for i in range(4)]
    work = SeriesWork(DicomWebSettings('http://pacs/dicom-web'),
                      FoundSeries(refs))
    for uid in ('1.2.0', '1.2.1'):  # both have results
        (tmp_path / uid).mkdir()
        (tmp_path / uid / 'findings.json').write_text('{}')
    store = '--dicomweb http://pacs/dicom-web: HTTP 503 (STOW-RS SR 9)'
    write_server_summary([
        ServerRow('1.2', '1.2.0', 'done', 1, 'stored', 'stored'),
        ServerRow('1.2', '1.2.1', 'failed', reason=store),
        ServerRow('1.2', '1.2.2', 'failed', reason='WADO-RS failed')],
        tmp_path / SERVER_SUMMARY)
    (tmp_path / 'scans.csv').write_text(
        'scan,folder,status,error\nx,1.2.3,failed,not a CT\n')
    assert [work.finished(tmp_path, r.series_uid) for r in refs] == [
        True, False, False, False]
    assert work.reasons(tmp_path) == {'1.2.1': store,
                                      '1.2.2': 'WADO-RS failed',
                                      '1.2.3': 'not a CT'}


def test_the_archive_summary_carries_the_model_warning(tmp_path):
    """Scans run with demo weights: summary.html heads with the warning
    (as each report.html does), summary.png says it in red, the console
    too (a sharded run's and a batch's); without a warning none."""
    from PIL import Image

    from mmlesion.apis.whole_scan.model import DEMO_MODEL_WARNING
    from mmlesion.apps.whole_scan.shard_summary import (
        ShardedRow, format_sharded_summary, write_sharded_outputs)
    rows = [ShardedRow('a.nii.gz', 'a', 0, 'done'),
            ShardedRow('b.nii.gz', 'b', 1, 'done'),
            ShardedRow('c.nii.gz', 'c', 1, 'failed', error='unreadable')]
    for warning, name in ((DEMO_MODEL_WARNING, 'demo'), (None, 'plain')):
        out = tmp_path / name
        for row in rows[:2]:
            folder = out / f'shard_{row.shard:03d}' / row.folder
            folder.mkdir(parents=True)
            (folder / 'findings.json').write_text(json.dumps(dict(
                model_warning=warning, findings=[])))
        write_sharded_outputs(rows, out)
        page = (out / 'summary.html').read_text()
        console = format_sharded_summary(rows, str(out))
        height = Image.open(out / 'summary.png').size[1]
        if warning:
            assert page.count(f'Warning: model {DEMO_MODEL_WARNING}.') == 1
            assert page.index('model-warning') < page.index('<h1>')
            assert console.splitlines()[0] == (
                f'WARNING: model {DEMO_MODEL_WARNING}')
            assert height > 400
        else:
            assert 'model-warning' not in page and 'WARNING' not in console
            assert height == 400
    # a batch without shards: its console summary too
    from mmlesion.apps.whole_scan.batch import BatchRow, format_batch_summary
    for name in ('demo', 'plain'):
        batch = tmp_path / f'batch_{name}'
        (batch / 'a').mkdir(parents=True)
        (tmp_path / name / 'shard_000' / 'a' / 'findings.json').rename(
            batch / 'a' / 'findings.json')
        console = format_batch_summary(
            [BatchRow('a.nii.gz', 'a', 'skipped'),
             BatchRow('c.nii.gz', 'c', 'failed', error='unreadable')],
            str(batch))
        assert ('WARNING' in console) == (name == 'demo')
        if name == 'demo':
            assert console.splitlines()[0] == (
                f'WARNING: model {DEMO_MODEL_WARNING}')


class _Locking(ShardWork):
    """Work that takes its shard folder's lock as a job's batch does, once
    the file ``go`` beside the shards exists."""

    def run(self, job):
        from mmlesion.apis.whole_scan.write import OutDirLock
        go = Path(job.run.out_dir).parent / 'go'
        while not go.exists():
            time.sleep(0.02)
        with OutDirLock(job.run.out_dir):
            return 0


@pytest.mark.skipif(not fork_available(), reason='local jobs fork')
def test_a_job_refused_by_a_lock_says_so_in_its_log(tmp_path):
    """Another process takes shard 0's lock once the jobs started: its job
    ends saying so in the last line of its log, and its item's reason in
    scans.csv is that line (not only 'ended (exit code 1)'); shard 1
    runs."""
    from contextlib import ExitStack

    from mmlesion.apis.whole_scan.write import out_lock_path
    from tests.helpers.lock_holder import lock_holder
    out = tmp_path / 'out'
    shard = out / 'shard_000'
    holders = []
    with ExitStack() as stack:

        def log(line):
            if 'started' in line:  # before the jobs take their locks
                shard.mkdir(parents=True, exist_ok=True)
                holders.append(stack.enter_context(
                    lock_holder(str(out), out_lock_path(shard))))
                (out / 'go').touch()

        rows = run_sharded_inference(
            _Locking(['a.nii.gz', 'b.nii.gz']), ShardedRun(
                'unused', None, str(out), log=log, shards=ShardSettings(
                    jobs=2, retries=0, poll_seconds=0.05)))
    busy = (f'{shard}: --out-dir in use by another infer_volume run (PID '
            f'{holders[0].pid} on host ')
    log = (out / 'logs' / 'shard_000.log').read_text().splitlines()
    assert log[-1].startswith('error: ' + busy), log
    assert rows[0].status == 'failed'
    assert rows[0].error.startswith('job process ') and busy in \
        rows[0].error and '(exit code 1: ' in rows[0].error
    assert 'error' not in (out / 'logs' / 'shard_001.log').read_text()


def test_server_csv_says_what_this_run_stored(tmp_path):
    """A retry finds on the server what the run's first round stored (its
    shard table then says 'on the server already'): OUT/server.csv says
    'stored'. A shard that did not run keeps the table of an earlier run,
    whose 'stored' is not this run's: 'on the server already'."""
    from mmlesion.apps.whole_scan.dicomweb_batch import (
        SERVER_SUMMARY, ServerRow, write_server_summary)
    from mmlesion.apps.whole_scan.dicomweb_source import DicomWebSettings
    from mmlesion.apps.whole_scan.server_shards import SeriesWork
    from mmlesion.apps.whole_scan.server_source import FoundSeries, SeriesRef
    from mmlesion.apps.whole_scan.shard_summary import ShardedRow
    refs = [SeriesRef('1.2', f'1.2.{i}', 'CT') for i in range(2)]
    work = SeriesWork(DicomWebSettings('http://pacs/dicom-web'),
                      FoundSeries(refs))
    ran, idle = tmp_path / 'shard_000', tmp_path / 'shard_001'
    for k, (folder, store) in enumerate(((idle, 'stored'), (ran, 'stored'),
                                         (ran, 'on the server already'))):
        folder.mkdir(exist_ok=True)
        write_server_summary([ServerRow('1.2', f'1.2.{int(folder == idle)}',
                                        'done', 1, store, store)],
                             folder / SERVER_SUMMARY)
        if k:  # the earlier run's table, then round 1, then the retry
            work.round_ended([ran])
    work.write_outputs([ShardedRow('x', '1.2.0', 0, 'done', attempts=2),
                        ShardedRow('y', '1.2.1', 1, 'done')], tmp_path)
    with open(tmp_path / SERVER_SUMMARY, newline='') as f:
        got = [(r['series_uid'], r['sr'], r['seg'])
               for r in csv.DictReader(f)]
    assert got == [('1.2.0', 'stored', 'stored'),
                   ('1.2.1', 'on the server already',
                    'on the server already')]


def test_the_tool_says_an_interruption_in_one_line(monkeypatch, capsys):
    """Ctrl-C: infer_volume prints the line of the interrupted run (its
    jobs ended) and exits 130, without a traceback."""
    from mmlesion.apps.whole_scan.shards import ShardsInterrupted
    tool = load_tool('infer_volume.py')

    def interrupted(args, cfg):
        raise ShardsInterrupted('2 job(s) ended (shard_000 11, shard_001 12)')

    monkeypatch.setattr(tool, '_run_sharded', interrupted)
    code = tool.main([CFG_PATH, 'k.pth', 'a.nii.gz', 'b.nii.gz', '--jobs',
                      '2', '--out-dir', 'unused'])
    assert code == 130
    assert capsys.readouterr().err.splitlines() == [
        'interrupted: 2 job(s) ended (shard_000 11, shard_001 12)']
