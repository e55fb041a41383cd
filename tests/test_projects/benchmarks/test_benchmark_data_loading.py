# Copyright (c) mmlesion contributors. All rights reserved.
"""projects/benchmarks/benchmark_data_loading.py on the tiny demo set and
on synthetic slices (no speed is asserted), and the current slice loading
against the earlier one kept in data_loading_baseline.py (bit for bit)."""
import importlib.util
import json
import math

import numpy as np
import pytest

from mmlesion.datasets.transforms import LoadDeepLesionSlices, WindowHU
from mmlesion.datasets.deeplesion.png_slices import write_hu_png
from mmlesion.testing import repo_root

NINE = 'configs/elixirnet/demo/elixirnet_r18-tiny_fpn_1x_deeplesion-demo-9slice.py'
THREE = 'configs/elixirnet/elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py'
LENS = ('configs/lens/lens-afp-multi-fusion-mining_densenet121-2.5d_fpn_'
        '1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice.py')


def _load(name):
    spec = importlib.util.spec_from_file_location(
        name, repo_root() / 'projects' / 'benchmarks' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tool():
    return _load('benchmark_data_loading')


def test_workers_and_step_time(tiny_demo_root, tmp_path):
    out = tmp_path / 'loading.json'
    assert _tool().main([
        str(repo_root() / NINE), '--workers', '0', '2', '--samples', '3',
        '--warmup', '1', '--step-time', '--json', str(out),
        '--cfg-options',
        f'train_dataloader.dataset.data_root={tiny_demo_root}/'
    ]) == 0
    res = json.loads(out.read_text())
    assert [r['workers'] for r in res['loading']] == [0, 2]
    assert all(r['samples_per_s'] > 0 for r in res['loading'])
    assert res['needed_samples_per_s'] > 0 and res['step_s'] > 0
    assert res['fewest_workers_that_keep_up'] in (None, 0, 2)


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    assert _tool().main([
        str(repo_root() / NINE), '--cfg-options',
        f'train_dataloader.dataset.data_root={tmp_path}/'
    ]) == 1
    assert 'cannot be built' in capsys.readouterr().err


def test_parts_on_synthetic_slices(tmp_path, capsys):
    """--parts on a full-size config, synthetic PNGs (said so), with the
    documented H100 time of the config."""
    out = tmp_path / 'parts.json'
    assert _tool().main([
        str(repo_root() / THREE), '--parts', '--synthetic', '--samples', '2',
        '--warmup', '1', '--json', str(out)
    ]) == 0
    text = capsys.readouterr().out
    assert 'samples/s per worker' in text and 'worker(s) needed' in text
    res = json.loads(out.read_text())
    assert res['data'].startswith('synthetic') and res['num_slices'] == 3
    parts = res['parts']
    assert parts['key_png_decode_ms'] > 0
    assert parts['neighbour_png_decode_ms'] > 0
    assert 1 <= parts['slices_decoded'] <= 3
    assert 'MultiSliceRandomAffine' in parts['augmentation_steps_ms']
    total = (parts['key_png_decode_ms'] + parts['neighbour_png_decode_ms']
             + parts['slice_assembly_ms'] + parts['windowing_ms']
             + parts['augmentation_ms'])
    assert total == pytest.approx(parts['total_ms'], rel=1e-6)
    assert res['loading']['identical'] is True
    assert res['loading']['ratio'] > 0 and res['loading']['mean_ratio'] > 0
    assert res['loading']['current_median_ms'] > 0
    need = res['need']
    assert need['gpu_ms_per_image'] == 77.7 and need['samples_per_step'] == 2
    assert need['workers'] >= 1
    assert need['meets_goal'] == (need['workers'] <= 4)
    assert need['estimated_workers'] is None  # a timed training step


IMPROVED = ('configs/retinanet_lesion/improved-retinanet_vgg19_densefpn-ag_'
            '1xb4-adam-plateau-50e_deeplesion.py')


def test_parts_with_the_recist_mask_cache(tmp_path, monkeypatch):
    """--recist-cache: the masks of the samples are written first and read
    (GrabCut does not run while the parts are timed); without it they are
    made for every sample, even where the config names a cache folder
    that holds them."""
    import mmlesion.datasets.transforms.recist_grabcut as module
    original = module.recist_grabcut_mask
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, 'recist_grabcut_mask', counted)
    runs = {}
    for flag in ([], ['--recist-cache']):
        calls.clear()
        out = tmp_path / f'parts{len(flag)}.json'
        assert _tool().main([
            str(repo_root() / IMPROVED), '--parts', '--synthetic',
            '--samples', '4', '--warmup', '1', '--json', str(out)] + flag
        ) == 0
        runs[bool(flag)] = (json.loads(out.read_text()), len(calls))
    (plain, plain_calls), (cached, cached_calls) = runs[False], runs[True]
    assert 'RecistToMask' in plain['parts']['augmentation_steps_ms']
    assert 'RecistToMask' in cached['parts']['augmentation_steps_ms']
    assert 'cache' not in plain['data']
    assert 'RECIST masks read from a cache' in cached['data']
    # the cache is written once per key slice (13 of them, one lesion
    # each); the 5 samples timed then read it
    assert plain_calls == 5
    assert cached_calls == 13


def test_parts_without_real_data_falls_back(tmp_path, capsys):
    """A data root without the series: synthetic slices, said so; the
    step time and batch size given on the command line; the rate of one
    DataLoader worker process."""
    out = tmp_path / 'parts.json'
    assert _tool().main([
        str(repo_root() / LENS), '--parts', '--data-root',
        str(tmp_path / 'absent'), '--samples', '2', '--warmup', '1',
        '--gpu-ms-per-image', '10', '--samples-per-step', '3',
        '--with-loader', '--json',
        str(out)
    ]) == 0
    res = json.loads(out.read_text())
    assert res['loader_samples_per_s'] > 0
    assert res['samples_per_s_per_worker'] == res['loader_samples_per_s']
    assert res['data'].startswith('synthetic') and res['num_slices'] == 9
    assert 'ClipBlackBorder' in res['parts']['augmentation_steps_ms']
    assert res['loading']['identical'] is True
    need = res['need']
    assert need['samples_per_step'] == 3 and need['step_s'] == 0.03
    assert need['gpu_time_kind'] == 'given' and need['estimated_workers'] is None
    assert need['workers'] == math.ceil(
        3 / (0.03 * res['samples_per_s_per_worker']) - 1e-9)
    assert 'synthetic' in capsys.readouterr().out


def test_parts_on_real_slices_when_present(tmp_path):
    from mmlesion.testing import shared_data_root
    root = shared_data_root()
    series = None if root is None else (
        root / 'deeplesion' / 'Images_png' / '000062_01_01')
    if series is None or not (series / '084.png').is_file():
        pytest.skip('shared DeepLesion series 000062_01_01 is not available')
    parts = _load('data_loading_parts')
    desc = parts.prepare_slices(str(tmp_path), str(root / 'deeplesion'))
    assert desc.startswith('real')
    rows = (tmp_path / 'DL_info.csv').read_text().splitlines()
    assert len(rows) == 1 + len(parts.KEY_SLICES)
    # real validation rows: alternately 1 mm and 5 mm slice intervals
    assert '"0.' in rows[1] or ', 1"' in rows[1]


def test_workers_needed_and_doc_times():
    tool = _load('data_loading_workers')
    assert tool.workers_needed(2, 0.1, 10.) == 2
    assert tool.workers_needed(2, 0.1, 10.5) == 2
    assert tool.workers_needed(2, 0.1, 9.9) == 3
    assert tool.workers_needed(4, 1., 100.) == 1
    with pytest.raises(ValueError):
        tool.workers_needed(2, 0., 10.)
    assert tool.h100_time(THREE).ms_per_image == 77.7
    assert tool.h100_time(LENS).kind.startswith('inference')
    assert tool.h100_time('configs/x/unknown.py') is None
    assert tool.h100_time(
        'improved-retinanet_vgg19_densefpn-ag_1xb4-adam-plateau-50e_'
        'deeplesion.py').ms_per_image == 9.6
    assert tool.h100_time('improved-retinanet_vgg19_densefpn_1xb4-adam-'
                          'plateau-50e_deeplesion.py') is None


def test_bad_part_options_are_refused():
    tool = _tool()
    for bad in (['--gpu-ms-per-image', '0'], ['--samples-per-step', '0']):
        with pytest.raises(SystemExit):
            tool.parse_args([THREE, '--parts'] + bad)


@pytest.fixture(scope='module')
def tiny_series(tmp_path_factory):
    """Slices 0-10 of a 7 x 6 series, slice 7 missing, HU beyond the clip
    range included."""
    folder = tmp_path_factory.mktemp('series') / '000001_01_01'
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(11):
        if i == 7:
            continue
        hu = rng.integers(-3024, 4000, (7, 6)).astype(np.float32)
        write_hu_png(str(folder / f'{i:03d}.png'), hu)
    return folder


@pytest.mark.parametrize('num_slices', [1, 3, 9])
@pytest.mark.parametrize('hu_clip', [(-1024., 3071.), None])
def test_loading_is_bit_identical_to_the_earlier_way(tiny_series, num_slices,
                                                     hu_clip):
    base = _load('data_loading_baseline')
    new = LoadDeepLesionSlices(num_slices=num_slices, hu_clip=hu_clip)
    old = base.LoadDeepLesionSlicesBaseline(num_slices=num_slices,
                                            hu_clip=hu_clip)
    window = WindowHU()
    for key in (0, 5, 6, 8, 10):
        for interval in (0.6, 1., 2., 2.5, 5., float('nan')):
            inputs = dict(img_path=str(tiny_series / f'{key:03d}.png'),
                          series_dir=str(tiny_series), key_slice=key,
                          slice_interval=interval)
            got = new.transform(dict(inputs))
            want = old.transform(dict(inputs))
            assert got['img'].dtype == want['img'].dtype == np.float32
            assert got['img'].tobytes() == want['img'].tobytes(), (key,
                                                                   interval)
            assert got['num_fallback_slices'] == want['num_fallback_slices']
            windowed = window.transform(dict(got))['img']
            assert windowed.tobytes() == base.window_hu_baseline(
                want['img'], window.window, window.out_range).tobytes()
    assert new.num_fallbacks == old.num_fallbacks
    assert (new.num_fallbacks > 0) == (num_slices > 1)
