# Copyright (c) mmlesion contributors. All rights reserved.
"""Builders, fakes and runners used only by this suite (not installed)."""
