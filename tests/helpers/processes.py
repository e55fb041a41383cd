# Copyright (c) mmlesion contributors. All rights reserved.
"""Whether a process a test started still runs (Linux ``/proc``)."""


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie no one reaps has ended)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False
