# Copyright (c) mmlesion contributors. All rights reserved.
"""Release replicas: miniature synthetic copies of the public releases."""
