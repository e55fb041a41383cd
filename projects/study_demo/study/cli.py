# Copyright (c) mmlesion contributors. All rights reserved.
"""Command-line options shared by every study tool."""
import argparse
import os.path as osp
from typing import Callable, Optional

from ..study_args import add_study_arguments  # noqa: F401

from .rows import StudySettings

#: ``(folder, preset) -> data root``: makes a study's generated data.
DataMaker = Callable[[str, str], str]


def settings_from_args(args: argparse.Namespace,
                       data_root: Optional[str] = None,
                       data_maker: Optional[DataMaker] = None
                       ) -> StudySettings:
    """:class:`StudySettings` from the options of
    :func:`add_study_arguments` (``data_root`` overrides ``--data-root``).

    ``--quick`` runs one seed for one epoch on the ``'quick'`` data preset,
    ``--generate-data`` on the ``'deeplesion'`` preset (both made in the
    work dir once by ``data_maker``) unless a data root is given.

    Args:
        args (argparse.Namespace): the parsed study options.
        data_root (str, optional): overrides ``--data-root``.
        data_maker (DataMaker, optional): makes generated data
            (``folder, preset -> data root``); required for ``--quick`` and
            ``--generate-data`` without a data root.

    Returns:
        StudySettings: the settings of every row.

    Raises:
        ValueError: ``--quick`` / ``--generate-data`` without a data maker.
    """
    if data_root is None:
        data_root = args.data_root
    quick = getattr(args, 'quick', False)
    if data_root is None and (quick or getattr(args, 'generate_data', False)):
        preset = 'quick' if quick else 'deeplesion'
        if data_maker is None:
            raise ValueError('--quick / --generate-data: this tool has no '
                             'generated data; give --data-root')
        data_root = data_maker(
            osp.join(args.work_dir, f'data_{preset}'), preset)
    return StudySettings(
        work_dir=args.work_dir,
        seeds=(args.seed, ) if quick else (args.seeds or (args.seed, )),
        data_root=data_root,
        max_epochs=1 if quick else args.max_epochs,
        cfg_options=args.cfg_options,
        skip_train=args.skip_train,
        keep_going=args.keep_going,
        overwrite=args.overwrite)
