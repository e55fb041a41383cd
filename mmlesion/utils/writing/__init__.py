# Copyright (c) mmlesion contributors. All rights reserved.
"""Writing files safely: whole or absent, refusals said, one run per folder."""
