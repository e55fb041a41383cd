# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS's datasets: several sets as one, one-set batches, mined lesions."""
