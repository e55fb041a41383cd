# Copyright (c) mmlesion contributors. All rights reserved.
"""Distributed runs: CPU process groups, Slurm, stuck ranks."""
