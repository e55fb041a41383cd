# Copyright (c) mmlesion contributors. All rights reserved.
"""DeepLesion slices that are not regular files or lead out of the data:
a FIFO key or neighbour slice is refused before it is opened (it would block
the loader forever), a neighbour that is a link out of the data root is
refused, links inside it are read."""
import contextlib
import os
import threading

import numpy as np
import pytest

from mmlesion.datasets.deeplesion.png_slices import read_hu_png, write_hu_png
from mmlesion.datasets.transforms.loading import LoadDeepLesionSlices


@contextlib.contextmanager
def fifo(path):
    """A FIFO; a helper thread serves any reader an empty file (the old
    behaviour), so no test can block forever."""
    os.mkfifo(path)
    stop = threading.Event()

    def writer():
        while not stop.is_set():
            os.close(os.open(path, os.O_WRONLY))

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield str(path)
    finally:
        stop.set()
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        thread.join(5)
        os.close(fd)


def _series(root, name='000001_01_01', slices=range(8, 13)):
    folder = root / 'Images_png' / name
    folder.mkdir(parents=True)
    for z in slices:
        write_hu_png(str(folder / f'{z:03d}.png'),
                     np.full((8, 8), -1000.0 + z))
    return folder


def _load(folder, key=10, num_slices=3, interval=1.0):
    t = LoadDeepLesionSlices(num_slices=num_slices, interval_mm=interval)
    return t(dict(img_path=str(folder / f'{key:03d}.png'),
                  series_dir=str(folder), key_slice=key,
                  slice_interval=1.0))


def _refused(folder, path, *words, exc=ValueError, **kw):
    with pytest.raises(exc) as info:
        _load(folder, **kw)
    msg = str(info.value)
    assert str(path) in msg and '\n' not in msg, msg
    for word in words:
        assert word in msg, (word, msg)


@pytest.mark.parametrize('z', [9, 11])
def test_fifo_neighbour_slice(tmp_path, z):
    folder = _series(tmp_path)
    os.remove(folder / f'{z:03d}.png')
    with fifo(folder / f'{z:03d}.png') as path:
        _refused(folder, path, 'FIFO', 'not a regular file')


def test_fifo_far_neighbour_of_a_wide_stack(tmp_path):
    folder = _series(tmp_path)
    os.remove(folder / '008.png')
    with fifo(folder / '008.png') as path:
        _refused(folder, path, 'FIFO', num_slices=5)


def test_fifo_key_slice(tmp_path):
    folder = _series(tmp_path)
    os.remove(folder / '010.png')
    with fifo(folder / '010.png') as path:
        _refused(folder, path, 'FIFO')
        with pytest.raises(ValueError, match='FIFO'):
            read_hu_png(path)


def test_folder_named_as_a_neighbour(tmp_path):
    folder = _series(tmp_path)
    os.remove(folder / '011.png')
    os.mkdir(folder / '011.png')
    _refused(folder, folder / '011.png', 'a folder')


@pytest.mark.parametrize('z', [9, 11, 10])
def test_link_out_of_the_data_root(tmp_path, z):
    folder = _series(tmp_path / 'data')
    outside = tmp_path / 'elsewhere.png'
    write_hu_png(str(outside), np.full((8, 8), 500.0))
    os.remove(folder / f'{z:03d}.png')
    os.symlink(outside, folder / f'{z:03d}.png')
    _refused(folder, folder / f'{z:03d}.png', 'link leading out',
             str(outside))


@pytest.mark.parametrize('how', ['transform', 'sample', 'variable'])
def test_link_out_read_with_the_switch(how, tmp_path, monkeypatch):
    """allow_outside_data as the transform's setting, as the sample's (from
    its dataset), or as the variable a user may set instead."""
    from mmlesion.datasets.volumes.scan_switches import ScanChecks
    folder = _series(tmp_path / 'data')
    outside = tmp_path / 'elsewhere.png'
    write_hu_png(str(outside), np.full((8, 8), 500.0))
    os.remove(folder / '011.png')
    os.symlink(outside, folder / '011.png')
    monkeypatch.delenv('MMLESION_ALLOW_OUTSIDE_DATA', raising=False)
    _refused(folder, folder / '011.png', 'link leading out')
    on = ScanChecks(allow_outside_data=True)
    if how == 'variable':
        monkeypatch.setenv('MMLESION_ALLOW_OUTSIDE_DATA', '1')
    t = LoadDeepLesionSlices(num_slices=3, interval_mm=1.0,
                             scan_checks=on if how == 'transform' else None)
    img = t(dict(img_path=str(folder / '010.png'), series_dir=str(folder),
                 key_slice=10, slice_interval=1.0,
                 **(dict(scan_checks=on) if how == 'sample' else {})))['img']
    assert img[0, 0].tolist() == [-991.0, -990.0, 500.0]


def test_broken_link_neighbour(tmp_path):
    folder = _series(tmp_path)
    os.remove(folder / '011.png')
    os.symlink(tmp_path / 'gone.png', folder / '011.png')
    _refused(folder, folder / '011.png', 'broken link',
             exc=FileNotFoundError)


def test_links_inside_the_data_root_are_read(tmp_path):
    """A neighbour linked to another series of Images_png, and a series
    folder that is itself a link to a folder elsewhere, are data."""
    folder = _series(tmp_path / 'data')
    other = _series(tmp_path / 'data', '000002_01_01', slices=[3])
    os.remove(folder / '011.png')
    os.symlink(other / '003.png', folder / '011.png')
    img = _load(folder)['img']
    assert img[0, 0].tolist() == [-991.0, -990.0, -997.0]
    real = _series(tmp_path / 'disk2')
    os.symlink(real, tmp_path / 'data' / 'Images_png' / '000003_01_01')
    img = _load(tmp_path / 'data' / 'Images_png' / '000003_01_01')['img']
    assert img[0, 0].tolist() == [-991.0, -990.0, -989.0]


def test_missing_neighbour_still_falls_back(tmp_path):
    folder = _series(tmp_path, slices=[10, 11])
    results = _load(folder)
    assert results['img'][0, 0].tolist() == [-990.0, -990.0, -989.0]
    assert results['num_fallback_slices'] == 1
