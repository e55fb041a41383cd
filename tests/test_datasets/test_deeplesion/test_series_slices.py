# Copyright (c) mmlesion contributors. All rights reserved.
"""``iter_series_slices``: every stored slice of every series, through the
dataset's pipeline (a stand-in dataset: no image is read)."""
from mmlesion.datasets.deeplesion.series_slices import iter_series_slices
from tests.helpers.info_dataset import InfoDataset


def _pipeline(item):
    return dict(packed=item['img_path'], n=len(item['instances']))


def _series(folder, slices):
    folder.mkdir(parents=True)
    for z in slices:
        (folder / f'{z:03d}.png').write_bytes(b'')
    (folder / 'notes.txt').write_text('not a slice')
    return str(folder)


def test_every_stored_slice_through_the_pipeline(tmp_path):
    a = _series(tmp_path / 'a', range(1, 8))
    b = _series(tmp_path / 'b', [10, 11, 12])
    infos = [
        dict(series_dir=a, key_slice=3, instances=[dict(bbox=[0, 0, 1, 1])]),
        dict(series_dir=a, key_slice=6, instances=[dict(bbox=[1, 1, 2, 2])]),
        dict(series_dir=b, key_slice=11, instances=[dict(bbox=[0, 0, 2, 2])]),
    ]
    dataset = InfoDataset(infos, _pipeline)
    got = list(iter_series_slices(dataset, show_progress=False))
    assert [(s, z, k) for s, z, _, k, _ in got] == [
        (a, 1, False), (a, 2, False), (a, 3, True), (a, 4, False),
        (a, 5, False), (a, 6, True), (a, 7, False),
        (b, 10, False), (b, 11, True), (b, 12, False)]
    # a key slice keeps its boxes, every other slice has none
    assert [p['n'] for *_, p in got] == [0, 0, 1, 0, 0, 1, 0, 0, 1, 0]
    assert got[5][2] is infos[1] and got[0][2] is infos[0]
    assert got[1][4]['packed'].endswith('002.png')
    assert infos[0]['key_slice'] == 3  # the templates are not changed
    near = list(iter_series_slices(dataset, max_offset=1,
                                   show_progress=False))
    assert [z for _, z, *_ in near] == [2, 3, 4, 5, 6, 7, 10, 11, 12]
