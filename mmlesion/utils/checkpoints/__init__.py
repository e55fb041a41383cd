# Copyright (c) mmlesion contributors. All rights reserved.
"""Checkpoints: loading them safely, their checksums, writing them whole,
pretrained sources, resuming, and the results pickle read the same way."""
