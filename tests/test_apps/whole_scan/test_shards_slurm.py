# Copyright (c) mmlesion contributors. All rights reserved.
"""The archive command of docs/archive.md on real parts: ``infer_volume
--dicomweb URL --query ... --jobs 2 --slurm`` against a real Orthanc
holding 20 CT series (tests/helpers/orthanc.py, the series of
test_dicomweb.py) and a real one-node Slurm cluster (started by the test;
each skipped, saying why, where it cannot). One job is killed midway (its
task's Python processes SIGKILLed, as the kernel's OOM killer does; a plain
``scancel`` lets a submitit job run on until Slurm's KillWait); its series
are run again in a new job; the same command again finds nothing to do.
Every series' SR and SEG is in its study once (instances counted by
QIDO-RS), one merged findings table. Scan lists and folder trees shard
through the same code (test_shards.py: local processes, a failing scan
retried)."""
import csv
import os
import signal
import threading
import time
from collections import Counter

import pytest
import torch

from tests.helpers.orthanc import PASSWORD, USER
from tests.helpers.slurm_cluster import PARTITION
from tests.helpers.stub_seg_detector import write_stub_config
from tests.helpers.tool_modules import load_tool
from .test_dicomweb import NUM_CT, ROOT, orthanc  # noqa: F401

pytestmark = pytest.mark.slurm


def _kill_task(task: str, slurm_conf: str) -> bool:
    """SIGKILL to the Python processes of array task ``task`` of this
    test's cluster (its ``SLURM_CONF``); whether there were any."""
    want = {f'SLURM_ARRAY_TASK_ID={task}'.encode(),
            f'SLURM_CONF={slurm_conf}'.encode()}
    killed = False
    for entry in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{entry}/environ', 'rb') as f:
                env = set(f.read().split(b'\0'))
            with open(f'/proc/{entry}/cmdline', 'rb') as f:
                argv0 = f.read().split(b'\0')[0]
        except OSError:
            continue
        if want <= env and b'python' in argv0:
            os.kill(int(entry), signal.SIGKILL)
            killed = True
    return killed


def _qido(orthanc, modality: str) -> dict:
    """{(study UID, series UID): instances} of the server's series of a
    modality (QIDO-RS)."""
    from dicomweb_client.api import DICOMwebClient
    import requests
    session = requests.Session()
    session.auth = (USER, PASSWORD)
    client = DICOMwebClient(orthanc.dicomweb, session=session)
    series = client.search_for_series(search_filters={'Modality': modality},
                                      get_remaining=True)
    uids = [(s['0020000D']['Value'][0], s['0020000E']['Value'][0])
            for s in series]
    return {(study, uid): len(client.search_for_instances(
        study_instance_uid=study, series_instance_uid=uid))
        for study, uid in uids}


def _table(path) -> list:
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def test_a_query_on_slurm_with_a_killed_job_stores_every_series_once(
        slurm_cluster, orthanc, tmp_path, monkeypatch, capsys):  # noqa: F811
    pytest.importorskip('submitit')
    for key, value in slurm_cluster.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    monkeypatch.setenv('MMLESION_DICOMWEB_PASSWORD', PASSWORD)
    torch.set_num_threads(1)
    config, ckpt = write_stub_config(tmp_path / 'model')
    out = tmp_path / 'out'
    argv = [str(config), str(ckpt), '--dicomweb', orthanc.dicomweb,
            '--dicomweb-user', USER, '--query', 'StudyDate=20240101-20240131',
            '--out-dir', str(out), '--jobs', '2', '--slurm', '--partition',
            PARTITION, '--cpus-per-task', '1', '--timeout-min', '5',
            '--pixel-spacing', '8', '--max-pictures', '0', '--no-overlap']
    killed = []

    def kill_job_0() -> None:
        """Job 0 killed once its first series has results."""
        end = time.monotonic() + 120
        while time.monotonic() < end and not killed:
            if list(out.glob('shard_000/*/findings.json')):
                if _kill_task('0', os.environ['SLURM_CONF']):
                    killed.append({p.parent.name for p in out.glob(
                        'shard_000/*/findings.json')})
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_job_0, daemon=True)
    watcher.start()
    tool = load_tool('infer_volume.py')
    code = tool.main(argv)
    captured = capsys.readouterr()
    watcher.join()
    assert code == 0, captured.out + captured.err
    assert killed, 'job 0 ended before it could be killed'
    assert 'retrying' in captured.out, captured.out

    rows = {r['folder']: r for r in _table(out / 'scans.csv')}
    assert len(rows) == NUM_CT
    assert {r['status'] for r in rows.values()} == {'done'}
    # job 0's series not finished when it was killed ran in a new job
    assert {r['attempts'] for r in rows.values() if r['shard'] == '1'} == {
        '1'}
    assert any(r['attempts'] == '2' for r in rows.values()
               if r['shard'] == '0')
    server = _table(out / 'server.csv')
    assert sorted(r['status'] for r in server) == ['done'] * NUM_CT + [
        'skipped'] * 3
    done = [r for r in server if r['status'] == 'done']
    assert {r['series_uid'] for r in done} == set(rows)
    # stored by this command, also those its retry found on the server
    assert {(r['sr'], r['seg']) for r in done} == {('stored', 'stored')}
    # every series' SR and SEG on the server once, in its study
    sr, seg = _qido(orthanc, 'SR'), _qido(orthanc, 'SEG')
    assert len(sr) == len(seg) == NUM_CT
    assert set(sr.values()) == set(seg.values()) == {1}
    per_study = Counter(r['study_uid'] for r in done)
    assert Counter(study for study, _ in sr) == per_study
    assert Counter(study for study, _ in seg) == per_study
    found = _table(out / 'findings.csv')
    assert found and len({(f['folder'], f['finding']) for f in found}) == \
        len(found)
    assert {f['folder'] for f in found} <= set(rows)
    text = captured.out + captured.err + ''.join(
        (out / n).read_text() for n in ('scans.csv', 'server.csv',
                                        'findings.csv'))
    assert 'Testpatient' not in text

    # the same command again: nothing to run, nothing stored
    tables = {n: (out / n).read_bytes() for n in ('findings.csv',
                                                  'scans.csv')}
    code = tool.main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert 'job(s) started' not in captured.out
    assert _qido(orthanc, 'SR') == sr and _qido(orthanc, 'SEG') == seg
    assert {n: (out / n).read_bytes() for n in tables} == tables
    assert {(r['sr'], r['seg']) for r in _table(out / 'server.csv')
            if r['status'] == 'done'} == {('on the server already',
                                           'on the server already')}
    assert f'{ROOT}.1.7' in (out / 'server.csv').read_text()  # the skipped
