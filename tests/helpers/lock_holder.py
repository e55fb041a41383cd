# Copyright (c) mmlesion contributors. All rights reserved.
"""Another process holding a :class:`~mmlesion.utils.writing.work_dir_lock.
WorkDirLock` until it is killed, as a second run would."""
import subprocess
import sys
from contextlib import contextmanager
from typing import Iterator, Optional

from mmlesion.utils.configs.lookup import repo_root

LOCK_MODULE = (repo_root() / 'mmlesion' / 'utils' / 'writing' /
               'work_dir_lock.py')
# the module is loaded by path: importing mmlesion would take most of a
# test's time
_HOLDER = '''
import importlib.util, os, sys, time
spec = importlib.util.spec_from_file_location('work_dir_lock', sys.argv[1])
lock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lock)
held = lock.WorkDirLock(sys.argv[2])
if len(sys.argv) > 3:
    held.path = sys.argv[3]
held.acquire()
print('locked', flush=True)
time.sleep(300)
'''


@contextmanager
def lock_holder(work_dir: str,
                lock_path: Optional[str] = None
                ) -> Iterator[subprocess.Popen]:
    """A process holding the lock of ``work_dir`` (at ``lock_path`` if
    given) from entry until it is killed or the block ends."""
    argv = [sys.executable, '-c', _HOLDER, str(LOCK_MODULE), str(work_dir)]
    if lock_path is not None:
        argv.append(str(lock_path))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'locked'
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
