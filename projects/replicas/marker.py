# Copyright (c) mmlesion contributors. All rights reserved.
"""The replica sizes and the text of a replica's marker
(:mod:`mmlesion.datasets.replica_marker` reads it)."""
from dataclasses import dataclass
from typing import Dict, Union

from mmlesion.datasets.replica_marker import REPLICA_FIRST_LINE

#: Version of the replica generators (bumped when the bytes change).
REPLICA_VERSION = 1


@dataclass(frozen=True)
class ReplicaSize:
    """How big a replica is (per dataset, the generators pick from it).

    Args:
        name (str): ``tiny`` or ``small``.
        num_scans (int): labelled scans (LUNA16, KiTS19, LiTS, NIH-LN).
        scan_px (int): in-plane size of a scan (square).
        num_slices (tuple): inclusive range of slices of a scan.
        fov_mm (tuple): range of the in-plane field of view (mm): the
            whole body in view, air around it, as a real scan.
        dl_key_slices (tuple): DeepLesion key slices (train, val, test).
        dl_image_px (int): DeepLesion slice size.
    """
    name: str
    num_scans: int
    scan_px: int
    num_slices: tuple
    fov_mm: tuple
    dl_key_slices: tuple
    dl_image_px: int


#: The sizes of ``--size``.
REPLICA_SIZES: Dict[str, ReplicaSize] = {
    'tiny': ReplicaSize('tiny', 2, 96, (20, 24), (340., 380.), (2, 1, 1),
                        128),
    'small': ReplicaSize('small', 4, 128, (32, 40), (340., 380.), (4, 2, 2),
                         192),
}


def replica_size(size: Union[str, ReplicaSize]) -> ReplicaSize:
    """A :class:`ReplicaSize` by name (or itself).

    Raises:
        ValueError: an unknown name (the known ones are listed).
    """
    if isinstance(size, ReplicaSize):
        return size
    if size not in REPLICA_SIZES:
        raise ValueError(f'unknown replica size {size!r}: one of '
                         f'{sorted(REPLICA_SIZES)}')
    return REPLICA_SIZES[size]


def replica_marker_text(dataset: str, size: str, seed: int,
                        layout: str) -> str:
    """The content of :data:`REPLICA_FILE`."""
    return (f'{REPLICA_FIRST_LINE}\n'
            f'dataset: {dataset}\n'
            f'size: {size}\n'
            f'seed: {seed}\n'
            f'version: {REPLICA_VERSION}\n'
            'generator: projects/replicas/tools/generate_release_replica.py'
            ' (projects.replicas.release)\n'
            f'layout: {layout}\n'
            'Images are rendered phantoms with planted lesions; every '
            'annotation is made up. Never report results on it.\n')
