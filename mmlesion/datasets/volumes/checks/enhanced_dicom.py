# Copyright (c) mmlesion contributors. All rights reserved.
"""The frames of an enhanced multi-frame DICOM image, read from its
functional groups (PS3.3 C.7.6.16).

An Enhanced CT stores each frame's position in its Per-frame Functional
Groups (PlanePositionSequence) and the orientation, pixel spacing and
rescale there or in the Shared Functional Groups. GDCM stacks the frames
in stored order at one spacing (1 mm where it finds none), which is wrong
as soon as the frames are not stored in position order or evenly spaced.
Here each frame gets its own :class:`~.dicom.SliceHeader`, so the frames
are sorted and checked exactly as the slices of a series
(:func:`~.dicom.check_stack`).
"""
from typing import List, Optional, Sequence

import numpy as np

from .dicom import SliceHeader, check_grayscale, parse_numbers

#: SOP classes read frame by frame from their functional groups.
_ENHANCED_HINT = ('1.2.840.10008.5.1.4.1.1.2.1',  # Enhanced CT
                  '1.2.840.10008.5.1.4.1.1.2.2')  # Legacy Converted Enh. CT


def is_multi_frame(sop_class: str, frames: int) -> bool:
    """Whether a file (its SOP Class UID and NumberOfFrames) may hold
    functional groups to read frame by frame."""
    return frames > 1 or sop_class.strip('\x00 ') in _ENHANCED_HINT


def _numbers(path: str, where: str, value, count: int) -> np.ndarray:
    many = hasattr(value, '__iter__') and not isinstance(value, (str, bytes))
    return parse_numbers(path, where, value if many else [value], count,
                         value)


def _group_value(groups: Sequence, sequence: str, keyword: str):
    """The first value of ``sequence > keyword`` in the per-frame group,
    else the shared one; None where neither has it."""
    for group in groups:
        if group is None or sequence not in group:
            continue
        items = group[sequence].value
        if items and keyword in items[0]:
            return items[0][keyword].value
    return None


def enhanced_headers(path: str, ds) -> Optional[List[SliceHeader]]:
    """One header per frame of an enhanced multi-frame image.

    Args:
        path (str): the file (named in errors).
        ds (pydicom.Dataset): its header.

    Returns:
        list[SliceHeader] | None: None where the file has no Per-frame
        Functional Groups Sequence (5200,9230).

    Raises:
        ValueError: naming the file, the frame and the tag, for a frame
            count that differs from NumberOfFrames, a colour image, or a
            frame without a position, orientation or readable value.
    """
    if 'PerFrameFunctionalGroupsSequence' not in ds:
        return None
    per_frame = ds.PerFrameFunctionalGroupsSequence
    frames = int(ds.get('NumberOfFrames', 1) or 1)
    if len(per_frame) != frames:
        raise ValueError(
            f'{path}: {len(per_frame)} items in the Per-frame Functional '
            f'Groups Sequence (5200,9230) but NumberOfFrames (0028,0008) '
            f'{frames}: frames and their positions cannot be paired; the '
            'file is damaged')
    check_grayscale(path, int(ds.get('SamplesPerPixel', 1)),
                    str(ds.get('PhotometricInterpretation', 'MONOCHROME2')),
                    str(ds.get('SOPClassUID', '')))
    shared_seq = ds.get('SharedFunctionalGroupsSequence')
    shared = shared_seq[0] if shared_seq else None
    size = (int(ds.Rows), int(ds.Columns))
    photometric = str(ds.get('PhotometricInterpretation', 'MONOCHROME2'))
    top = [ds.get(k) for k in ('RescaleSlope', 'RescaleIntercept')]
    headers = []
    for f, item in enumerate(per_frame):
        groups = (item, shared)
        name = f'frame {f + 1}'

        def find(sequence, keyword, tag, count, required=True):
            value = _group_value(groups, sequence, keyword)
            where = f'{name}: {sequence} > {keyword} {tag}'
            if value is None:
                if required:
                    raise ValueError(
                        f'{path}: {where} is missing (neither per-frame nor '
                        'shared): the frame cannot be placed in the volume; '
                        'the file is not a valid enhanced image')
                return None
            return _numbers(path, where, value, count)

        ipp = find('PlanePositionSequence', 'ImagePositionPatient',
                   '(0020,0032)', 3)
        iop = find('PlaneOrientationSequence', 'ImageOrientationPatient',
                   '(0020,0037)', 6)
        spacing = find('PixelMeasuresSequence', 'PixelSpacing',
                       '(0028,0030)', 2, required=False)
        rescale = [
            find('PixelValueTransformationSequence', key, tag, 1, False)
            for key, tag in _RESCALE
        ]
        _check_one_rescale(path, name, item, shared, top)
        if rescale[0] is None and rescale[1] is None and all(
                v is not None for v in top):
            rescale = [_numbers(path, f'{k} (top level)', v, 1)
                       for k, v in zip(('RescaleSlope', 'RescaleIntercept'),
                                       top)]
        rescale_type = _group_value(groups,
                                    'PixelValueTransformationSequence',
                                    'RescaleType') or ds.get('RescaleType')
        if (rescale[0] is None) != (rescale[1] is None):
            raise ValueError(
                f'{path}: {name}: PixelValueTransformationSequence has only '
                'one of RescaleSlope (0028,1053) and RescaleIntercept '
                '(0028,1052): its Hounsfield units are unknown; the file is '
                'not a valid enhanced CT')
        headers.append(
            SliceHeader(ipp, iop, size, spacing,
                        None if rescale[0] is None else
                        (float(rescale[0][0]), float(rescale[1][0])),
                        photometric, 1, str(rescale_type or ''),
                        'PixelPaddingValue' in ds))
    return headers


#: The rescale of a frame: keyword and tag.
_RESCALE = (('RescaleSlope', '(0028,1053)'),
            ('RescaleIntercept', '(0028,1052)'))


def _check_one_rescale(path: str, name: str, item, shared, top) -> None:
    """Refuse a frame given two different rescales: per frame and shared
    (the standard allows one of the two, PS3.3 C.7.6.16), or in the
    functional groups and at the top level. Where they agree the
    per-frame one is read (the same values)."""
    found = []
    for where, group in (('per-frame', item), ('shared', shared)):
        values = tuple(
            _group_value((group, ), 'PixelValueTransformationSequence', k)
            for k, _ in _RESCALE)
        if any(v is not None for v in values):
            found.append((where, values))
    if all(v is not None for v in top):
        found.append(('top-level', tuple(top)))
    types = {str(value).strip() for value in (
        _group_value((g, ), 'PixelValueTransformationSequence', 'RescaleType')
        for g in (item, shared)) if value}
    if len(types) > 1:
        raise ValueError(
            f'{path}: {name}: RescaleType (0028,1054) per frame and shared '
            f'differ ({", ".join(sorted(types))}): whether its values are '
            'HU is ambiguous; correct the file')
    shown = [(w, tuple(None if v is None else float(v) for v in values))
             for w, values in found]
    if len({values for _, values in shown}) > 1:
        raise ValueError(
            f'{path}: {name}: two rescales (RescaleSlope (0028,1053), '
            'RescaleIntercept (0028,1052)): ' + ', '.join(
                f'{w} {v[0]:g}, {v[1]:g}' if None not in v else f'{w} {v}'
                for w, v in shown) + ': its Hounsfield units are ambiguous '
            '(the standard gives a frame one rescale, per frame or shared); '
            'correct the file')
