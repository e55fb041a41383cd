# Copyright (c) mmlesion contributors. All rights reserved.
"""Miniature synthetic copies of the public releases, file for file.

A *release replica* has the exact folder layout, file names, file formats
and CSV / JSON headers of a public dataset as it is downloaded, filled with
the demo phantoms (a few scans, a few MB, generated in seconds), so the
documented real-data commands (converters, configs) can be rehearsed in CI
without the real data. :data:`REPLICA_DATASETS` names each dataset's
layout; the modules :mod:`.deeplesion`, :mod:`.luna16`, :mod:`.label_maps`
(KiTS19, LiTS) and :mod:`.nih_ln` describe it.

Every replica holds ``REPLICA.txt`` at its root
(:func:`~.marker.find_replica_marker` tells one apart from real
data). Writing is atomic (a temporary sibling folder renamed at the end)
and refuses a non-empty folder unless ``overwrite`` (and then only a
replica). Same dataset, size and seed give byte-identical files.
"""
import time
from pathlib import Path
from typing import Dict, Union

from mmlesion.datasets.replica_marker import REPLICA_FILE

from mmlesion.apps.demo.dataset_writer import write_dataset_dir
from .deeplesion import write_deeplesion_replica
from .label_maps import write_kits19_replica, write_lits_replica
from .luna16 import write_luna16_replica
from .marker import replica_marker_text, replica_size
from .nih_ln import write_nih_ln_replica

#: ``dataset -> (writer, one-line layout)``.
REPLICA_DATASETS: Dict[str, tuple] = {
    'deeplesion': (write_deeplesion_replica,
                   'Images_png/<patient>_<study>_<series>/<slice:03d>.png, '
                   'DL_info.csv, DeepLesion_manual_1K_test_release.pkl'),
    'luna16': (write_luna16_replica,
               'subset0..9/<seriesuid>.mhd+.raw, seg-lungs-LUNA16/, '
               'annotations.csv, annotations_excluded.csv, candidates.csv, '
               'candidates_V2.csv, seriesuids.csv'),
    'kits19': (write_kits19_replica,
               'data/case_XXXXX/{imaging,segmentation}.nii.gz, '
               'data/kits.json'),
    'lits': (write_lits_replica,
             'Training Batch 1|2/{volume,segmentation}-N.nii'),
    'nih_ln': (write_nih_ln_replica,
               'CT Lymph Nodes/<PatientID>/**/1-NNN.dcm, '
               'MED_ABD_LYMPH_MASKS/<PatientID>/<PatientID>_mask.nii.gz'),
}


def generate_release_replica(dataset: str,
                             out_dir: Union[str, Path],
                             seed: int = 0,
                             size: str = 'small',
                             overwrite: bool = False) -> dict:
    """Write the release replica of ``dataset`` into ``out_dir``.

    Args:
        dataset (str): one of :data:`REPLICA_DATASETS`.
        out_dir (str | Path): the replica's root (the folder a user would
            have unpacked the release into).
        seed (int): random seed. Defaults to 0.
        size (str): ``tiny`` or ``small`` (see
            :data:`~.marker.REPLICA_SIZES`).
        overwrite (bool): replace a replica previously written there.

    Returns:
        dict: counts of what was written plus ``dataset``, ``size``,
        ``seed``, ``out_dir``, ``seconds`` and ``bytes``.

    Raises:
        ValueError: an unknown dataset or size.
        FileExistsError: ``out_dir`` is a file, a non-empty folder without
            ``overwrite``, or a non-empty folder that is not a replica.
    """
    if dataset not in REPLICA_DATASETS:
        raise ValueError(f'unknown dataset {dataset!r}: one of '
                         f'{sorted(REPLICA_DATASETS)}')
    spec = replica_size(size)
    writer, layout = REPLICA_DATASETS[dataset]
    counts: dict = {}
    start = time.perf_counter()

    def write(tmp: Path, progress) -> None:
        counts.update(writer(tmp, spec, int(seed), progress))
        (tmp / REPLICA_FILE).write_text(
            replica_marker_text(dataset, spec.name, int(seed), layout),
            encoding='utf-8')

    out = write_dataset_dir(out_dir, write, overwrite, REPLICA_FILE)
    counts.update(
        dataset=dataset, size=spec.name, seed=int(seed), out_dir=str(out),
        seconds=round(time.perf_counter() - start, 2),
        bytes=sum(p.stat().st_size for p in out.rglob('*') if p.is_file()))
    return counts

