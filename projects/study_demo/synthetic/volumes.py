# Copyright (c) mmlesion contributors. All rights reserved.
"""Deterministic synthetic CT volumes in the LUNA16, KiTS19 and LiTS layouts.

The 3D counterpart of :mod:`mmlesion.apps.demo.generator`: whole phantom
CT scans (:class:`~mmlesion.apps.demo.phantom.CTPhantom`) with planted
lesions, written as the public 3D datasets ship them (``data/README.md``
lists the files and lesions), so the volume readers, converters, 3D
detectors and evaluators run end to end on a CPU.

Every scan is generated in one canonical axial grid (LPS, identity
direction, slice 0 the most inferior), then stored as each dataset does:
LUNA16 in that grid, KiTS19 in the released files' axis order
(:data:`KITS_DIRECTION`, as ``case_00002``), LiTS with rows and columns
flipped (:data:`LITS_DIRECTION`). ``ground_truth.json``'s boxes are
``[x1, y1, z1, x2, y2, z2]`` in the canonical grid (voxel centres at
integers). Same seed and settings give byte-identical files.
"""
import csv
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from mmlesion.datasets.deeplesion.dl_info import format_dl_number
from mmlesion.utils.writing.atomic import atomic_write, atomic_write_json

from mmlesion.apps.demo.dataset_writer import DatasetGenerator, round_all
from .volume_settings import (GROUND_TRUTH_FILE, KITS_DIRECTION,
                              LITS_DIRECTION, LUNA16_COLUMNS,
                              VOLUME_GENERATOR_VERSION, DemoVolumeConfig)
from .volume_plan import (DemoVolumePlanner, PlantedLesion, _ellipsoid_extent,
                          _Scan)


class DemoVolumeGenerator(DemoVolumePlanner, DatasetGenerator):
    """Plan and write the synthetic CT volume set.

    Args:
        config (DemoVolumeConfig, optional): settings; keyword arguments
            override its fields (e.g. ``seed=1, num_luna=4``).

    Example:
        >>> gen = DemoVolumeGenerator(num_luna=4, num_kits=1, num_lits=1)
        >>> summary = gen.generate('data/demo_volumes')
    """

    CONFIG = DemoVolumeConfig
    MARKER = GROUND_TRUTH_FILE

    def _lesion_record(self, scan: _Scan, les: PlantedLesion) -> dict:
        """The ``ground_truth.json`` entry of a lesion."""
        outer = les.outer
        world = scan.lesion_world(outer)
        zyx = scan.world_to_voxel(world)[0]
        ex, ey, ez = _ellipsoid_extent(outer)
        sz, sy, sx = scan.spacing_zyx
        bbox = [zyx[2] - ex / sx, zyx[1] - ey / sy, zyx[0] - ez / sz,
                zyx[2] + ex / sx, zyx[1] + ey / sy, zyx[0] + ez / sz]
        rec = dict(
            scan=scan.scan_id, dataset=scan.dataset,
            series_uid=scan.series_uid, kind=les.kind,
            center_world=round_all(world, 4),
            center_voxel_zyx=round_all(zyx, 4), bbox_voxel=round_all(bbox, 4),
            diameter_mm=round(les.diameter_mm, 4),
            semi_axes_mm=round_all(outer.semi_axes, 4),
            angle=round(outer.angle, 5), hu=outer.hu,
            host_hu=outer.host_hu, annotated=les.annotated,
            excluded=les.excluded)
        if len(les.parts) > 1:
            rec['core_hu'] = les.parts[1].hu
            rec['core_diameter_mm'] = round(
                2. * max(les.parts[1].semi_axes), 4)
        return rec

    def _scan_record(self, scan: _Scan) -> dict:
        """The ``ground_truth.json`` entry of a scan."""
        file, label = _scan_files(scan)
        direction = dict(kits=KITS_DIRECTION, lits=LITS_DIRECTION).get(
            scan.dataset, (1., 0., 0., 0., 1., 0., 0., 0., 1.))
        return dict(
            id=scan.scan_id, dataset=scan.dataset, split=scan.split,
            file=file, label_file=label, series_uid=scan.series_uid,
            shape_zyx=list(scan.shape_zyx),
            spacing_zyx=[float(v) for v in scan.spacing_zyx],
            origin_xyz=[round(v, 4) for v in scan.origin_xyz],
            direction=[1., 0., 0., 0., 1., 0., 0., 0., 1.],
            file_direction=list(direction),
            noise_sigma=round(scan.noise_sigma, 2))

    def ground_truth(self) -> dict:
        """The content of ``ground_truth.json`` (after rendering)."""
        scans = self.plan()
        lesions, lookalikes = [], []
        for s in scans:
            lesions.extend(self._lesion_record(s, les) for les in s.lesions)
            for p in s.lookalikes:
                lookalikes.append(
                    dict(scan=s.scan_id, dataset=s.dataset,
                         series_uid=s.series_uid, kind='vessel_bifurcation',
                         center_world=round_all(p, 4),
                         center_voxel_zyx=round_all(
                             s.world_to_voxel(p)[0], 4),
                         diameter_mm=-1, excluded=True))
        return dict(
            generator='mmlesion.datasets.demo.volumes',
            version=VOLUME_GENERATOR_VERSION, config=asdict(self.config),
            box_format='x1y1z1x2y2z2_voxel',
            scans=[self._scan_record(s) for s in scans], lesions=lesions,
            lookalikes=lookalikes)

    def luna16_rows(self) -> Tuple[List[list], List[list]]:
        """Rows of ``annotations.csv`` and ``annotations_excluded.csv``."""
        ann, excl = [], []
        for s in self.plan():
            if s.dataset != 'luna16':
                continue
            for les in s.lesions:
                x, y, z = s.lesion_world(les.outer)
                row = [s.series_uid, _fmt(x), _fmt(y), _fmt(z),
                       _fmt(les.diameter_mm)]
                if les.excluded:
                    excl.append(row)
                elif les.annotated:
                    ann.append(row)
            for x, y, z in s.lookalikes:
                excl.append([s.series_uid, _fmt(x), _fmt(y), _fmt(z), '-1'])
        return ann, excl

    def _write_scan(self, root: Path, scan: _Scan) -> None:
        import SimpleITK as sitk
        img, labels = self.render_scan(scan)
        file, label = _scan_files(scan)
        (root / file).parent.mkdir(parents=True, exist_ok=True)
        if scan.dataset == 'luna16':
            write_scan_image(img, scan, root / file)
            return
        seg = self.label_map(scan, labels)
        for arr, path in zip((img, seg), (file, label)):
            image = _to_file_layout(arr, scan)
            sitk.WriteImage(image, str(root / path), useCompression=True)

    def _num_steps(self) -> int:
        return len(self.plan())

    def _write(self, tmp: Path, progress) -> None:
        for scan in self.plan():
            self._write_scan(tmp, scan)
            if progress is not None:
                progress.update()
        self._write_tables(tmp)
        atomic_write_json(str(tmp / GROUND_TRUTH_FILE), self.ground_truth(),
                          indent=1)

    def _write_tables(self, root: Path) -> None:
        scans = self.plan()
        if any(s.dataset == 'luna16' for s in scans):
            ann, excl = self.luna16_rows()
            for name, rows in (('annotations.csv', ann),
                               ('annotations_excluded.csv', excl)):
                with atomic_write(str(root / 'luna16' / name),
                                  newline='') as f:
                    writer = csv.writer(f, lineterminator='\n')
                    writer.writerow(LUNA16_COLUMNS)
                    writer.writerows(rows)
            (root / 'luna16' / 'seriesuids.csv').write_text(
                ''.join(f'{s.series_uid}\n' for s in scans
                        if s.dataset == 'luna16'), encoding='utf-8')
        kits = [s for s in scans if s.dataset == 'kits']
        if kits:
            info = [dict(case_id=s.scan_id,
                         voxel_spacing=dict(x_spacing=s.grid.spacing,
                                            y_spacing=s.grid.spacing,
                                            z_spacing=s.thickness))
                    for s in kits]
            atomic_write_json(str(root / 'kits' / 'kits.json'), info,
                              indent=4)

    def summary(self) -> dict:
        """Counts of the planned (and, after rendering, planted) set."""
        scans = self.plan()
        out: Dict[str, dict] = {}
        for s in scans:
            d = out.setdefault(s.dataset, dict(scans=0, train=0, val=0,
                                               lesions={}, unannotated=0,
                                               lookalikes=0, slices=0))
            d['scans'] += 1
            d[s.split] += 1
            d['slices'] += s.num_slices
            d['lookalikes'] += len(s.lookalikes)
            for les in s.lesions:
                d['lesions'][les.kind] = d['lesions'].get(les.kind, 0) + 1
                d['unannotated'] += int(not les.annotated
                                        and not les.excluded)
        return out


def _fmt(value: float) -> str:
    """A float as the official LUNA16 CSVs write it (10 digits)."""
    return format_dl_number(value, digits=10)


def _scan_files(scan: _Scan) -> Tuple[str, Optional[str]]:
    """The image and label map files of a scan, relative to the root."""
    if scan.dataset == 'luna16':
        return f'luna16/subset0/{scan.series_uid}.mhd', None
    if scan.dataset == 'kits':
        return (f'kits/{scan.scan_id}/imaging.nii.gz',
                f'kits/{scan.scan_id}/segmentation.nii.gz')
    return (f'lits/volume-{scan.index}.nii.gz',
            f'lits/segmentation-{scan.index}.nii.gz')


def write_scan_image(arr: np.ndarray, scan: _Scan, path: Path,
                     compress: bool = False) -> None:
    """Write a canonical (z, y, x) array on ``scan``'s grid (LPS, no
    direction) with SimpleITK."""
    import SimpleITK as sitk
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((scan.grid.spacing, scan.grid.spacing, scan.thickness))
    image.SetOrigin(scan.origin_xyz)
    sitk.WriteImage(image, str(path), useCompression=compress)


def _to_file_layout(arr: np.ndarray, scan: _Scan):
    """A SimpleITK image of a canonical (z, y, x) array, in the dataset's
    stored axis order (see the module doc)."""
    import SimpleITK as sitk
    sp, thk = scan.grid.spacing, scan.thickness
    ox, oy, oz = scan.origin_xyz
    nz, ny, nx = arr.shape
    if scan.dataset == 'kits':
        # first file axis = axial, running head -> feet (world -z)
        image = sitk.GetImageFromArray(
            np.ascontiguousarray(arr[::-1].transpose(2, 1, 0)))
        image.SetSpacing((thk, sp, sp))
        image.SetOrigin((ox, oy, oz + (nz - 1) * thk))
        image.SetDirection(KITS_DIRECTION)
    else:  # LiTS: rows and columns flipped
        image = sitk.GetImageFromArray(np.ascontiguousarray(arr[:, ::-1,
                                                                ::-1]))
        image.SetSpacing((sp, sp, thk))
        image.SetOrigin((ox + (nx - 1) * sp, oy + (ny - 1) * sp, oz))
        image.SetDirection(LITS_DIRECTION)
    return image


#: Write the synthetic volume set (``out_dir, seed=0, overwrite=False,
#: show_progress=False, **DemoVolumeConfig fields``); its summary counts.
generate_demo_volumes = DemoVolumeGenerator.write
