# Copyright (c) mmlesion contributors. All rights reserved.
"""The known truth in real anatomy: lesions of 20-80 HU contrast inserted
into a real CT scan (TotalSegmentator's example CT, 3 mm voxels, pelvis to
upper abdomen), with instance label maps, a box CSV and a clinic's RECIST
sheet (:func:`make_real_scans`, :func:`write_recist_sheet`).

Patients: one real scan holds one patient's anatomy, so the "patients"
here are distinct stretches of it along z (``patients`` blocks of equal
height, pelvis to liver: each block different anatomy); a patient's two
studies are its block as scanned and mirrored left-right, each with its
own lesions. A held-out patient's anatomy is therefore never seen in
training, but all patients share one body, its scanner and its noise.

Lesions: ellipsoids of random axes and in-plane angle, at least 80 % in
soft tissue (the smoothed HU between -80 and 150), that replace the tissue
they grow in with a soft edge (a logistic fall-off of about 1.5 mm): the
median soft-tissue HU around them (their ellipsoid grown by half, less
itself), plus or minus (at random) 20-80 HU, with a texture (smoothed
noise of 8 HU); each scan holds one pair of
lesions that touch (two label values, one connected component). The
contrast stated (:attr:`Scene.contrast_hu`) is measured, as a reader
would: the mean HU inside the label minus that of a 2-voxel shell around
it, absolute.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Tuple

import numpy as np

#: The real CT the lesions go into (a file under the shared data folder).
SOURCE = 'ct_volumes/totalsegmentator/example_ct.nii.gz'
#: Soft tissue: where lesion centres may lie (smoothed HU).
SOFT_HU = (-80., 150.)
#: Least share of a lesion's ellipsoid in soft tissue (not in bone, gas,
#: lung or air).
SOFT_SHARE = .8
#: The surroundings a lesion's contrast is to: its ellipsoid grown by this
#: factor, less the lesion (the soft tissue there).
SHELL = 1.5
#: Edge width of the logistic fall-off (mm) and texture noise (HU).
EDGE_MM, TEXTURE_HU = 1.5, 8.
#: Header of the clinic's RECIST sheet (mapped with ``--columns``).
RECIST_HEADER = ('case', 'patient', 'x_mm', 'y_mm', 'z_mm', 'long_axis_mm',
                 'short_axis_mm', 'slice_index')
#: The converter's ``--columns`` for that sheet (the axes and the slice
#: carry the converter's names already).
RECIST_COLUMNS = ('volume_id=case', 'patient_id=patient', 'coordX=x_mm',
                  'coordY=y_mm', 'coordZ=z_mm')


@dataclass(frozen=True)
class RealAnatomySet:
    """Lesions in real anatomy (module doc).

    Args:
        patients (int): z-blocks of the real scan, each a patient of two
            studies.
        diameters_mm (tuple): lesion axes (mm) drawn uniformly within.
        contrast_hu (tuple): the added HU, drawn uniformly within, its sign
            at random.
        lesions (tuple): lesions per scan besides the touching pair, from
            ``lesions[0]`` to ``lesions[1]`` inclusive.
        seed (int): the random draws.
        source (str): the real CT, relative to the shared data folder.
    """
    patients: int = 6
    diameters_mm: Tuple[float, float] = (12., 39.)
    contrast_hu: Tuple[float, float] = (20., 80.)
    lesions: Tuple[int, int] = (1, 2)
    seed: int = 0
    source: str = SOURCE


@dataclass
class Scene:
    """What :func:`make_real_scans` made.

    Attributes:
        scans (int): scans written.
        lesions (int): lesions (label values) written.
        touching (int): pairs of lesions that touch.
        contrast_hu (list[float]): each lesion's measured contrast (module
            doc).
    """
    scans: int = 0
    lesions: int = 0
    touching: int = 0
    contrast_hu: List[float] = field(default_factory=list)

    def summary(self) -> str:
        """One line: scans, lesions, touching pairs and the contrast."""
        c = np.asarray(self.contrast_hu)
        return (f'{self.lesions} lesions ({self.touching} touching pairs) '
                f'in {self.scans} scans of real anatomy; contrast to the '
                f'surroundings median {np.median(c):.0f} HU (range '
                f'{c.min():.0f}-{c.max():.0f})')


def _ellipsoid_radius(grids, centre, axes_vox, angle):
    """Normalised radius (1 on the surface) of an ellipsoid rotated by
    ``angle`` in the axial plane."""
    z, y, x = (g - c for g, c in zip(grids, centre))
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = x * cos + y * sin, -x * sin + y * cos
    return np.sqrt((z / axes_vox[0])**2 + (v / axes_vox[1])**2 +
                   (u / axes_vox[2])**2)


def _place(rng, soft, used, axes, angle, near=None):
    """A centre in soft tissue whose ellipsoid stays in the block and clear
    of the lesions ``used`` (None after 200 tries); with ``near`` (a
    lesion's centre, axes and angle), a centre beside it at an axial
    distance under the sum of their shortest axial radii, so the two
    overlap and, split by the nearer surface, touch."""
    shape = soft.shape
    for _ in range(200):
        if near is None:
            c = np.array([rng.uniform(a, s - 1 - a)
                          for a, s in zip(axes, shape)])
        else:
            (nc, na, _), phi = near, rng.uniform(0, 2 * np.pi)
            reach = .85 * (min(na[1:]) + min(axes[1:]))
            c = nc + np.array([0., reach * np.sin(phi), reach * np.cos(phi)])
            if not all(a <= v <= s - 1 - a for v, a, s in
                       zip(c, axes, shape)):
                continue
        if not soft[tuple(np.round(c).astype(int))]:
            continue
        # the ellipsoid's box (its longest axis every way) holds it
        box = tuple(slice(max(int(v - max(axes)) - 1, 0),
                          int(v + max(axes)) + 2) for v in c)
        grids = np.ogrid[tuple(slice(b.start, min(b.stop, n))
                               for b, n in zip(box, shape))]
        r = _ellipsoid_radius(grids, c, axes, angle)
        if soft[box][r <= 1].mean() < SOFT_SHARE:
            continue
        if all(np.linalg.norm(c - u) > 1.1 * (max(a) + max(axes))
               for u, a in used if near is None or u is not near[0]):
            return c
    return None


def make_real_scans(root: Path, synth: RealAnatomySet = RealAnatomySet()
                    ) -> Scene:
    """``root/images/p<k>_study<j>.nii.gz`` and their instance label maps
    in ``root/labels`` (module doc); returns the :class:`Scene`."""
    import SimpleITK as sitk
    from scipy import ndimage
    from mmlesion.utils.data_roots import SHARED_DATA_ENV, shared_data_root
    root_data = shared_data_root()
    src = (root_data or Path(f'${SHARED_DATA_ENV}')) / synth.source
    if not src.is_file():
        raise FileNotFoundError(
            f'{src}: the real CT of the real-anatomy mode is missing (set '
            f'{SHARED_DATA_ENV} to the real-data folder that holds it)')
    image = sitk.ReadImage(str(src))
    full = sitk.GetArrayFromImage(image).astype(np.float32)  # z, y, x
    spacing = np.asarray(image.GetSpacing())[::-1]  # z, y, x
    rng = np.random.default_rng(synth.seed)
    height = full.shape[0] // synth.patients
    scene = Scene()
    for folder in ('images', 'labels'):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for k in range(synth.patients):
        block = full[k * height:(k + 1) * height]
        for study in (1, 2):
            arr = block[:, :, ::-1].copy() if study == 2 else block.copy()
            seg = np.zeros(arr.shape, np.uint8)
            smooth = ndimage.uniform_filter(arr, 3)
            soft = (smooth > SOFT_HU[0]) & (smooth < SOFT_HU[1])
            grids = np.ogrid[tuple(slice(0, s) for s in arr.shape)]
            used, block_hu = [], arr.copy()
            n = int(rng.integers(synth.lesions[0], synth.lesions[1] + 1))
            plan = [None] * n + ['pair', 'touch']
            last = None
            for kind in plan:
                axes = rng.uniform(*synth.diameters_mm, 3) / 2 / spacing
                angle = rng.uniform(0, np.pi)
                c = _place(rng, soft, used, axes, angle,
                           near=last if kind == 'touch' else None)
                if c is None:
                    last = None
                    continue
                r = _ellipsoid_radius(grids, c, axes, angle)
                inside = (r <= 1) & (seg == 0)
                edge = EDGE_MM / float(np.mean(axes * spacing))
                profile = 1 / (1 + np.exp(np.clip(-4 * (1 - r) / edge,
                                                  -50, 50)))
                touching = kind == 'touch' and last is not None
                if touching:
                    # the overlap goes to the nearer surface, voxels and HU
                    partner = seg == seg.max()
                    nearer = r < _ellipsoid_radius(grids, *last)
                    inside |= (r <= 1) & partner & nearer
                    profile[partner & ~nearer] = 0
                    partner &= ~inside
                texture = ndimage.gaussian_filter(
                    rng.normal(0, 1, arr.shape).astype(np.float32), 1)
                texture *= TEXTURE_HU / (texture.std() + 1e-6)
                # the lesion replaces the tissue it grows in: the median
                # soft tissue around it, plus or minus the contrast
                ring = (r > 1) & (r <= SHELL) & soft
                base = float(np.median(block_hu[ring if ring.any() else
                                                (r <= 1) & soft]))
                value = base + rng.choice((-1., 1.)) * rng.uniform(
                    *synth.contrast_hu) + texture
                arr += profile * (value - arr)
                seg[inside] = seg.max() + 1
                if touching and (ndimage.binary_dilation(inside) &
                                 partner).any():
                    scene.touching += 1
                used.append((c, axes))
                last = (c, axes, angle) if kind == 'pair' else None
            # measured contrast: label mean against a 2-voxel shell's
            for v in range(1, int(seg.max()) + 1):
                mask = seg == v
                if not mask.any():
                    continue
                shell = ndimage.binary_dilation(mask, iterations=2) & \
                    ~mask & (seg == 0)
                scene.contrast_hu.append(
                    abs(float(arr[mask].mean() - arr[shell].mean())))
                scene.lesions += 1
            seg = _relabel(seg)
            name = f'p{k:02d}_study{study}'
            for folder, values in (('images', np.round(arr).astype(np.int16)),
                                   ('labels', seg)):
                out = sitk.GetImageFromArray(values)
                out.CopyInformation(image[:, :, k * height:(k + 1) * height])
                sitk.WriteImage(out, str(root / folder / f'{name}.nii.gz'))
            scene.scans += 1
    return scene


def _relabel(seg: np.ndarray) -> np.ndarray:
    """Label values 1..n in order (a lesion whose voxels were all taken by
    its touching neighbour leaves no gap)."""
    out = np.zeros_like(seg)
    for i, v in enumerate(v for v in np.unique(seg) if v):
        out[seg == v] = i + 1
    return out


def write_recist_sheet(root: Path, csv_path: Path) -> int:
    """The lesions of ``root/labels`` as a clinic's RECIST sheet
    (:data:`RECIST_HEADER`): per lesion its key slice (the axial slice of
    its largest cross-section, ``slice_index`` 0-based along the file's z),
    the centre of its cross-section there (world mm), its long axis (the
    largest distance across it, pixel edges included) and its short axis
    (its extent perpendicular to the long one); ``patient`` the scan's
    name up to ``_study``. Returns the number of lesions."""
    import SimpleITK as sitk

    from mmlesion.utils.writing.atomic import atomic_write_text
    rows = [','.join(RECIST_HEADER)]
    for path in sorted((root / 'labels').glob('*.nii.gz')):
        img = sitk.ReadImage(str(path))
        seg = sitk.GetArrayFromImage(img)
        sx, sy = img.GetSpacing()[:2]
        case = path.name[:-len('.nii.gz')]
        for v in (v for v in np.unique(seg) if v):
            area = (seg == v).sum((1, 2))
            z = int(np.argmax(area))
            ys, xs = np.nonzero(seg[z] == v)
            pts = np.stack([xs * sx, ys * sy], 1)
            d = np.linalg.norm(pts[:, None] - pts[None], axis=2)
            i, j = np.unravel_index(np.argmax(d), d.shape)
            direction = (pts[j] - pts[i]) / max(d[i, j], 1e-6)
            normal = np.array([-direction[1], direction[0]])
            pixel = float(np.hypot(sx, sy))
            along = pts @ direction
            across = pts @ normal
            long_mm = float(np.ptp(along)) + pixel
            short_mm = min(float(np.ptp(across)) + pixel, long_mm)
            centre = img.TransformContinuousIndexToPhysicalPoint(
                (float(xs.mean()), float(ys.mean()), float(z)))
            rows.append(','.join([
                case, case.split('_study')[0],
                *(f'{c:.2f}' for c in centre), f'{long_mm:.1f}',
                f'{short_mm:.1f}', str(z)]))
    atomic_write_text(str(csv_path), '\n'.join(rows) + '\n')
    return len(rows) - 1
