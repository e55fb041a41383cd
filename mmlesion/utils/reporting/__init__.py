# Copyright (c) mmlesion contributors. All rights reserved.
"""What a run tells its user: progress, the tool's logger, the summary a
training prints at its end."""
