# Copyright (c) mmlesion contributors. All rights reserved.
"""Configs: finding them, checking their keys and options, their text."""
