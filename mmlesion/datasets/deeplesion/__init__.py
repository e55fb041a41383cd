# Copyright (c) mmlesion contributors. All rights reserved.
"""DeepLesion: its release layout, DL_info.csv, RECIST masks, 3D chunks."""
