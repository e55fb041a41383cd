# Copyright (c) mmlesion contributors. All rights reserved.
"""Distributed runs and forked processes: CPU process groups, Slurm, stuck
ranks, a call run in a forked child."""
