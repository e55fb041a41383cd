# Copyright (c) mmlesion contributors. All rights reserved.
"""Reading a generated data set back in the tests: a digest of its bytes;
of a demo DeepLesion set its CSV rows, a slice in HU, its
``demo_meta.json``."""
import csv
import hashlib
import json
from pathlib import Path
from typing import Union

import cv2
import numpy as np

from mmlesion.apps.demo import META_FILE


def dataset_digest(root: Union[str, Path]) -> str:
    """SHA-256 over the relative paths and bytes of every file under root."""
    root = Path(root)
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob('*') if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def demo_rows(root: Path) -> list:
    """The ``DL_info.csv`` rows (dicts by column)."""
    with open(root / 'DL_info.csv', newline='') as f:
        return list(csv.DictReader(f))


def demo_hu(root: Path, file_name: str) -> np.ndarray:
    """The slice ``file_name`` (``<series>_<slice>.png``) in HU."""
    series, index = file_name[:12], file_name[13:]
    raw = cv2.imread(str(root / 'Images_png' / series / index),
                     cv2.IMREAD_UNCHANGED)
    assert raw is not None and raw.dtype == np.uint16 and raw.ndim == 2
    return raw.astype(np.float32) - 32768


def demo_meta(root: Path) -> dict:
    """The set's ``demo_meta.json``."""
    return json.loads((root / META_FILE).read_text())
