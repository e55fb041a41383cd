# Copyright (c) mmlesion contributors. All rights reserved.
"""The Hounsfield units of a DICOM CT's stored values (PS3.3).

HU = stored value x RescaleSlope + RescaleIntercept (C.11.1.1.2), and:

* **Pixel padding** (C.7.5.1.1.2): a pixel whose stored value is
  PixelPaddingValue (0028,0120), or lies between it and
  PixelPaddingRangeLimit (0028,0121) inclusive, holds no patient data
  (outside the reconstructed field). It is given the reader's fill value
  (``VolumeOptions.default_value``: -1024 HU, air, unless set), not its
  rescaled value. A padding value that BitsStored can hold is compared with
  the stored values; one it cannot hold (-2000 in 16-bit words with 12
  bits stored) with the whole stored words, as GDCM does not (it keeps 12
  bits: 2096, read as 1072 HU).
* **Modality LUT Sequence** (0028,3000): not part of a CT image (GDCM
  ignores it): refused.
* **RescaleType** (0028,1054): absent (the CT Image module's HU) or 'HU';
  any other ('US': unspecified) says the values are not HU: refused.
* **Values below air**: a rescaled value below :data:`MIN_HU` that is not
  padding, inside the circle inscribed in the slice (the reconstructed
  field), means the stored values are not HU as the header says (a sign or
  bit depth misdeclared, a wrong intercept): refused. Outside that circle
  some scanners write undeclared out-of-field values down to about -4000
  HU; those are kept as read.

``force_ct`` (``--force-ct``) reads a RescaleType other than HU and values
below air anyway, as it reads other values that are not HU; a Modality LUT
is refused even then (its HU are unknown to this reader).
"""
from typing import NamedTuple, Optional, Sequence

import numpy as np

#: The lowest HU a voxel of the reconstructed field may hold: air is
#: -1000, a 12-bit scale starts at -1024; twice that is no CT value.
MIN_HU = -2048.
#: The field is the inscribed circle less this margin (pixels).
_FIELD_MARGIN = 1.0
#: What ``--force-ct`` does, for the errors.
_FORCE = ('; pass --force-ct (scan_checks=dict(force_ct=True)) to read '
          'it anyway')


def require_pydicom(path: str, what: str):
    """The pydicom module, or an error naming the file, what needs it and
    how to install it (pydicom comes with ``mmlesion[dicom]``)."""
    try:
        import pydicom
    except ImportError as err:
        raise ValueError(
            f'{path}: reading {what} needs pydicom, which is not installed; '
            'pip install "mmlesion[dicom]" (or pydicom)') from err
    return pydicom


def decode_stored(path: str, ds=None, words: bool = False) -> np.ndarray:
    """The stored pixel values of a DICOM file, decoded by pydicom.

    Args:
        path (str): the file (named in errors).
        ds (pydicom.Dataset, optional): the file already read.
        words (bool): the whole stored words, bits above BitsStored kept
            (default: the BitsStored bits, sign-extended where signed).

    Returns:
        np.ndarray: (rows, columns) or (frames, rows, columns).

    Raises:
        ValueError: naming the file and its transfer syntax where pydicom
            cannot decode it.
    """
    if ds is None:
        ds = require_pydicom(path, 'its stored values').dcmread(path)
    try:
        ds.pixel_array_options(correct_unused_bits=not words)
        return ds.pixel_array
    except Exception as err:  # pydicom raises many kinds for missing codecs
        syntax = getattr(getattr(ds, 'file_meta', None),
                         'TransferSyntaxUID', '?')
        raise ValueError(
            f'{path}: pydicom cannot decode its pixel data (transfer syntax '
            f'{syntax}: {str(err).strip().splitlines()[0][:160]}), which '
            'is needed for its HU; install the codec pydicom names '
            '(e.g. pylibjpeg) or convert the file to an uncompressed '
            'transfer syntax') from err


def _in_bits(values, bits: int, signed: bool) -> np.ndarray:
    """The low ``bits`` bits of integers, sign-extended where signed."""
    low = np.asarray(values, dtype=np.int64) & ((1 << bits) - 1)
    if signed:
        low = np.where(low >= 1 << (bits - 1), low - (1 << bits), low)
    return low


class PaddingRange(NamedTuple):
    """The stored values a file calls padding.

    Attributes:
        low (int): the lowest.
        high (int): the highest.
        whole_words (bool): BitsStored cannot hold them: compare the whole
            stored words.
    """
    low: int
    high: int
    whole_words: bool


def padding_range(ds) -> Optional[PaddingRange]:
    """The padding values of a file (pydicom dataset); None where it
    declares no padding."""
    if 'PixelPaddingValue' not in ds:
        return None
    value = int(ds.PixelPaddingValue)
    limit = int(ds.get('PixelPaddingRangeLimit', value))
    signed = int(ds.get('PixelRepresentation', 0)) == 1
    bits = int(ds.get('BitsStored', ds.BitsAllocated))
    ends = np.array([value, limit])
    whole = not np.array_equal(_in_bits(ends, bits, signed), ends)
    if whole:
        ends = _in_bits(ends, int(ds.BitsAllocated), signed)
    return PaddingRange(int(ends.min()), int(ends.max()), whole)


def _padding(ds, words: np.ndarray) -> Optional[np.ndarray]:
    """Where the pixels are padding (None: the file declares none)."""
    found = padding_range(ds)
    if found is None:
        return None
    low, high, whole = found
    pixels = np.asarray(words, dtype=np.int64) if whole else _in_bits(
        words, int(ds.get('BitsStored', ds.BitsAllocated)),
        int(ds.get('PixelRepresentation', 0)) == 1)
    return (pixels >= low) & (pixels <= high)


def padding_of_hu(hu: np.ndarray, low: int, high: int,
                  rescale: Sequence[float]) -> np.ndarray:
    """Where rescaled values (``hu``, of integer stored values) come from
    stored values in [``low``, ``high``]: within a quarter of a stored step
    of the rescaled range."""
    slope, inter = float(rescale[0]), float(rescale[1])
    ends = sorted((low * slope + inter, high * slope + inter))
    tol = abs(slope) / 4
    return (hu >= ends[0] - tol) & (hu <= ends[1] + tol)


class PydicomHU(NamedTuple):
    """A file's (frames, rows, columns) float32 HU and where its pixels
    are padding (None where the file declares none)."""
    hu: np.ndarray
    padding: Optional[np.ndarray]


def pydicom_hu(path: str, ds, rescale: np.ndarray,
               fill: float) -> PydicomHU:
    """HU of a file's frames decoded by pydicom, padding at ``fill``.

    Args:
        path (str): the file (named in errors).
        ds (pydicom.Dataset): the file read.
        rescale (np.ndarray): (frames, 2) or (1, 2) slope and intercept.
        fill (float): HU of the padding pixels.

    Returns:
        tuple: (frames, rows, columns) float32 HU and where the pixels
        are padding (None where the file declares none).
    """
    words = decode_stored(path, ds, words=True)
    words = words.reshape((-1, ) + words.shape[-2:])
    bits = int(ds.get('BitsStored', ds.BitsAllocated))
    signed = int(ds.get('PixelRepresentation', 0)) == 1
    stored = _in_bits(words, bits, signed).astype(np.float64)
    rescale = np.asarray(rescale, dtype=np.float64)
    hu = (stored * rescale[:, :1, None] + rescale[:, 1:, None]).astype(
        np.float32)
    padding = _padding(ds, words)
    if padding is not None:
        hu[padding] = fill
    return PydicomHU(hu, padding)


def check_rescale_type(path: str, value: str, where: str = '') -> None:
    """Refuse a RescaleType (0028,1054) other than HU.

    Raises:
        ValueError: naming the file, ``where`` (a frame) and the value.
    """
    value = str(value or '').strip(' \x00')
    if value in ('', 'HU'):
        return
    raise ValueError(
        f'{path}: {where}RescaleType (0028,1054) {value!r}: the rescaled '
        'values are not Hounsfield units (only HU is read as CT)' + _FORCE)


def check_no_modality_lut(paths: Sequence[str], ds=None) -> None:
    """Refuse a file whose HU a Modality LUT Sequence (0028,3000) gives:
    the CT Image and Enhanced CT IODs give RescaleSlope / RescaleIntercept
    instead, and GDCM ignores the table.

    Args:
        paths (sequence[str]): the files (headers read by pydicom, where
            installed; without it they are not checked).
        ds (pydicom.Dataset, optional): the one file already read.

    Raises:
        ValueError: naming the first such file.
    """
    for path in paths:
        if ds is None:
            try:
                import pydicom
            except ImportError:
                return
            head = pydicom.dcmread(path, stop_before_pixels=True,
                                   specific_tags=['ModalityLUTSequence'])
        else:
            head = ds
        if 'ModalityLUTSequence' in head:
            raise ValueError(
                f'{path}: ModalityLUTSequence (0028,3000): its HU would come '
                'from a lookup table, which CT images do not use (they give '
                'RescaleSlope / RescaleIntercept) and this reader does not '
                'apply; write the table into the pixel data (slope 1, '
                'intercept 0)')


def check_lowest_hu(source: str, names: Sequence[str], hu: np.ndarray,
                    padding: Optional[np.ndarray] = None) -> None:
    """Refuse values below :data:`MIN_HU` in the reconstructed field.

    Args:
        source (str): the folder or file, named first.
        names (sequence[str]): each slice's name (file, or frame).
        hu (np.ndarray): (slices, rows, columns) HU.
        padding (np.ndarray, optional): where the pixels are padding.

    Raises:
        ValueError: naming the first slice with such values, how many and
            the lowest.
    """
    if hu.size == 0 or float(hu.min()) >= MIN_HU:
        return
    rows, cols = hu.shape[-2:]
    r, c = np.ogrid[:rows, :cols]
    field = np.hypot(r - (rows - 1) / 2, c - (cols - 1) / 2) < \
        min(rows, cols) / 2 - _FIELD_MARGIN
    for k in range(hu.shape[0]):
        low = (hu[k] < MIN_HU) & field
        if padding is not None:
            low &= ~padding[k]
        if low.any():
            raise ValueError(
                f'{source}: {names[k]}: {int(low.sum())} pixels inside the '
                f'field of view below {MIN_HU:g} HU (lowest '
                f'{float(hu[k][low].min()):g}) that are not padding '
                '(PixelPaddingValue (0028,0120)): below air, so the stored '
                'values are not HU as PixelRepresentation (0028,0103), '
                'BitsStored (0028,0101) and RescaleIntercept (0028,1052) '
                'say' + _FORCE)


def slice_hu(path: str, header) -> np.ndarray:
    """HU of a single-frame file: stored x RescaleSlope + RescaleIntercept
    (padding as read), ``header`` its :class:`~.dicom.SliceHeader`.

    GDCM inverts a MONOCHROME1 image before its rescale, so those are
    decoded with pydicom; the others are read through SimpleITK.
    """
    if header.photometric == 'MONOCHROME2':
        import SimpleITK as sitk
        img = sitk.ReadImage(path, sitk.sitkFloat64)
        return sitk.GetArrayFromImage(img).reshape(header.size)
    slope, inter = header.rescale or (1., 0.)
    stored = decode_stored(path).astype(np.float64)
    return stored.reshape(header.size) * slope + inter
