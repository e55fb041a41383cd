# Copyright (c) mmlesion contributors. All rights reserved.
"""LUNA16 release replica: the challenge's files (``data/README.md`` lists
them), in miniature.

As released: the ten ``subset*`` folders (scans spread over them, the
others empty), scans without a nodule beside those with nodules (the
negative patients of the 3D Aggregated Faster R-CNN paper's TNP, 287 of the
888 scans: :func:`num_negative_scans` of them, from ``subset0`` on, so the
first fold holds out one beside a scan with nodules), MetaImage headers
as ITK writes them (``TransformMatrix = 1 0 0 0 1 0 0 0 1``,
``AnatomicalOrientation = RAI``, i.e. LPS, ``ElementType = MET_SHORT``),
CSVs with CRLF line ends and numbers of up to 10 significant digits (as the
official ``annotations.csv``), ``seriesuids.csv`` without a header, and
the lung masks of ``seg-lungs-LUNA16`` compressed (``.zraw``,
``MET_UCHAR``) with 3 = left lung, 4 = right lung (the labels
:mod:`mmlesion.datasets.volumes.lung_mask` reads; the phantom has no
trachea, so label 5 does not occur). Series UIDs have the length (64) and
shape of LIDC's but a test-data root (``1.2.826.0.1.3680043.8.498.``), so
they never collide with real ones.
"""
import csv
import io
from pathlib import Path
from typing import Dict, List

import numpy as np
from scipy import ndimage as ndi

from mmlesion.apps.demo.anatomy import Tissue
from projects.study_demo.synthetic.volume_settings import UID_ROOT
from projects.study_demo.synthetic.volumes import _fmt, write_scan_image
from .marker import ReplicaSize
from .scans import replica_scans

ANNOTATION_COLUMNS = ('seriesuid', 'coordX', 'coordY', 'coordZ',
                      'diameter_mm')
CANDIDATE_COLUMNS = ('seriesuid', 'coordX', 'coordY', 'coordZ', 'class')
NUM_SUBSETS = 10
LUNG_MASK_DIR = 'seg-lungs-LUNA16'
#: Labels of the released lung masks.
LEFT_LUNG, RIGHT_LUNG, TRACHEA = 3, 4, 5
#: LUNA16's scans without an annotated nodule, and with one (of 888).
RELEASE_NEGATIVE_SCANS, RELEASE_POSITIVE_SCANS = 287, 601
#: the seed stream of the nodule-free scans (their own anatomy)
_NEGATIVE_SEED = 287


def num_negative_scans(num_scans: int) -> int:
    """Nodule-free scans beside ``num_scans`` scans with nodules: the
    release's proportion (287 / 601), at least one."""
    return max(1, round(num_scans * RELEASE_NEGATIVE_SCANS /
                        RELEASE_POSITIVE_SCANS))


def _series_uid(rng: np.random.Generator) -> str:
    digits = 64 - len(UID_ROOT)
    body = str(int(rng.integers(1, 10))) + ''.join(
        str(int(d)) for d in rng.integers(0, 10, size=digits - 1))
    return UID_ROOT + body


def _write_csv(path: Path, header, rows) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\r\n')
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode('ascii'))


def lung_mask(scan, tissue: np.ndarray) -> np.ndarray:
    """seg-lungs-LUNA16 labels of a rendered chest scan (z, y, x) uint8."""
    lung = tissue == Tissue.LUNG
    for k in range(lung.shape[0]):  # vessels and nodules inside the lung
        lung[k] = ndi.binary_fill_holes(lung[k])
    cols = np.arange(scan.grid.size)
    world_x = scan.origin_xyz[0] + cols * scan.grid.spacing
    left = (world_x > 0.)[None, None, :]  # LPS: +x is the patient's left
    out = np.zeros(lung.shape, np.uint8)
    out[lung & left] = LEFT_LUNG
    out[lung & ~left] = RIGHT_LUNG
    return out


def _candidates(rng: np.random.Generator, scan, tissue: np.ndarray,
                num_negatives: int) -> List[list]:
    """Candidates of one scan: one near every annotated nodule (class 1),
    the vessel bifurcations and random lung points (class 0)."""
    rows = []
    for les in scan.lesions:
        if les.annotated:
            xyz = scan.lesion_world(les.outer) + rng.uniform(-1., 1., 3)
            rows.append([scan.series_uid, *map(_fmt, xyz), '1'])
    for xyz in scan.lookalikes:
        rows.append([scan.series_uid, *map(_fmt, xyz), '0'])
    voxels = np.argwhere(tissue == Tissue.LUNG)
    if len(voxels):
        for k, r, c in voxels[rng.choice(len(voxels), num_negatives)]:
            x = scan.origin_xyz[0] + c * scan.grid.spacing
            y = scan.origin_xyz[1] + r * scan.grid.spacing
            z = scan.origin_xyz[2] + k * scan.thickness
            rows.append([scan.series_uid, _fmt(x), _fmt(y), _fmt(z), '0'])
    return rows


def write_luna16_replica(root: Path, size: ReplicaSize, seed: int,
                         progress=None) -> Dict[str, int]:
    """Write the LUNA16 replica's files into ``root`` (an empty folder).

    Returns:
        dict: counts (``scans``, ``negative_scans`` (without a nodule),
        ``nodules``, ``excluded``, ``candidates``).
    """
    gen, scans = replica_scans('luna16', size.num_scans, size, seed)
    num_neg = num_negative_scans(size.num_scans)
    neg_gen, negatives = replica_scans('luna16', num_neg, size,
                                       seed + _NEGATIVE_SEED,
                                       with_lesions=False)
    rng = np.random.default_rng([seed, 16])
    for scan in scans + negatives:
        scan.series_uid = scan.scan_id = _series_uid(rng)
    for i in range(NUM_SUBSETS):
        (root / f'subset{i}').mkdir()
    (root / LUNG_MASK_DIR).mkdir()
    cand, cand_v2 = [], []
    # (generator, scan, subset): the negatives from subset0 on
    planned = [(gen, s, i % NUM_SUBSETS) for i, s in enumerate(scans)] + [
        (neg_gen, s, j % NUM_SUBSETS) for j, s in enumerate(negatives)]
    for i, (source, scan, subset) in enumerate(planned):
        img, tissue = source.render_scan(scan)
        name = f'{scan.series_uid}.mhd'
        write_scan_image(img, scan, root / f'subset{subset}' / name)
        write_scan_image(lung_mask(scan, tissue), scan,
                         root / LUNG_MASK_DIR / name, compress=True)
        crng = np.random.default_rng([seed, 17, i])
        rows = _candidates(crng, scan, tissue, 4)
        cand += rows
        cand_v2 += rows + _candidates(crng, scan, tissue, 2)[-2:]
        if progress is not None:
            progress.update()
    ann, excl = gen.luna16_rows()
    excl += neg_gen.luna16_rows()[1]  # their vessel look-alikes
    uids = sorted(s.series_uid for s in scans + negatives)

    def by_uid(rows):
        return sorted(rows, key=lambda row: uids.index(row[0]))

    _write_csv(root / 'annotations.csv', ANNOTATION_COLUMNS, by_uid(ann))
    _write_csv(root / 'annotations_excluded.csv', ANNOTATION_COLUMNS,
               by_uid(excl))
    _write_csv(root / 'candidates.csv', CANDIDATE_COLUMNS, by_uid(cand))
    _write_csv(root / 'candidates_V2.csv', CANDIDATE_COLUMNS,
               by_uid(cand_v2))
    _write_csv(root / 'seriesuids.csv', None, [[u] for u in uids])
    return dict(scans=len(planned), negative_scans=num_neg,
                nodules=len(ann), excluded=len(excl),
                candidates=len(cand), candidates_v2=len(cand_v2))
