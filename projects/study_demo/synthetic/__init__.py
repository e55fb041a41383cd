# Copyright (c) mmlesion contributors. All rights reserved.
"""The study simulator (not installed): the study options of the synthetic
DeepLesion set (:mod:`.deeplesion`: follow-ups, single-type sets, real
lesion sizes) and the synthetic CT volumes in the LUNA16, KiTS19 and LiTS
layouts (:mod:`.volumes`). Nothing is imported here: the tools' ``--help``
(:mod:`.generator_tool`) imports no library."""
