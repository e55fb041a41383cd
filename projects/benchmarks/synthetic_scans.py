# Copyright (c) mmlesion contributors. All rights reserved.
"""The synthetic scans the whole-scan benchmarks detect: chests with
lungs and nodules (:mod:`projects.study_demo.synthetic.volumes`, seed 0), as
MetaImage files."""
from pathlib import Path
from typing import List


def write_synthetic_scans(folder: Path, num_scans: int, size_xy: int,
                          num_slices: int) -> List[str]:
    """Write ``num_scans`` synthetic chest scans of ``size_xy`` x
    ``size_xy`` pixels and ``num_slices`` slices under ``folder``.

    Args:
        folder (Path): where they go (made if missing).
        num_scans (int): how many.
        size_xy (int): in-plane pixels.
        num_slices (int): slices.

    Returns:
        list[str]: the ``.mhd`` files, sorted.
    """
    from projects.study_demo.synthetic.volumes import generate_demo_volumes
    generate_demo_volumes(folder, seed=0, num_luna=num_scans, num_kits=0,
                          num_lits=0, val_fraction=0.,
                          size_range=(size_xy, size_xy),
                          num_slices_range=(num_slices, num_slices))
    return sorted(str(p) for p in Path(folder).rglob('*.mhd'))
