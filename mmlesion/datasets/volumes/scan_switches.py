# Copyright (c) mmlesion contributors. All rights reserved.
"""The switches that relax :func:`load_ct_volume`'s input checks.

One flag in every tool that reads scans, each also an environment variable
so that it reaches the datasets inside the Runner:

* ``--force-ct`` (``MMLESION_FORCE_CT=1``): read a scan that does not look
  like a CT in Hounsfield units;
* ``--resample-nonuniform`` (``MMLESION_RESAMPLE_NONUNIFORM=1``): interpolate
  a DICOM series with uneven slices onto a uniform grid instead of refusing
  it;
* ``--allow-outside-data`` (``MMLESION_ALLOW_OUTSIDE_DATA=1``): read data
  files and scans outside their folder or data root.
"""
from mmlesion.utils.env_switch import env_switch_on

#: The switches' environment variables (the tools' flags set them:
#: ``mmlesion_cli.common_args.add_scan_check_arguments``).
FORCE_CT_ENV = 'MMLESION_FORCE_CT'
RESAMPLE_NONUNIFORM_ENV = 'MMLESION_RESAMPLE_NONUNIFORM'
ALLOW_OUTSIDE_DATA_ENV = 'MMLESION_ALLOW_OUTSIDE_DATA'


def scan_check_defaults() -> dict:
    """``load_ct_volume`` keyword defaults from the switches.

    Returns:
        dict: ``check_modality``, ``resample_nonuniform`` and
        ``allow_outside_data``.
    """
    return dict(
        check_modality=not env_switch_on(FORCE_CT_ENV),
        resample_nonuniform=env_switch_on(RESAMPLE_NONUNIFORM_ENV),
        allow_outside_data=env_switch_on(ALLOW_OUTSIDE_DATA_ENV))
