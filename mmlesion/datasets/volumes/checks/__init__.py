# Copyright (c) mmlesion contributors. All rights reserved.
"""Checks of a CT file before (and as) its voxels are read, by format."""
