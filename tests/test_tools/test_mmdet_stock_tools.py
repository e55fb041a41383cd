# Copyright (c) mmlesion contributors. All rights reserved.
"""mmdet's own tools and APIs on the mmlesion configs.

The stock tools are run from the installed mmdet package
(``mmdet/.mim/tools``) in this process (``runpy``, as ``python TOOL ...``
would), on tiny versions of each family of configs: 2.5D 3-slice,
9-slice, LENS multi-dataset and 3D. Random weights with a fixed seed stand
in for a trained model: the comparisons are of boxes and scores, not of
accuracy.
"""
import json
import os
import os.path as osp
import re
import runpy
import sys
import types
import zipfile
from pathlib import Path

import mmdet
import mmengine
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet.apis import inference_detector, init_detector
from mmdet.registry import MODELS
from mmlesion.apis import LesionDetInferencer
from mmlesion.datasets.transforms import LoadDeepLesionSlices
from mmlesion.datasets.deeplesion.png_slices import read_hu_png
from mmlesion.testing import repo_root
from mmlesion.utils import CheckpointMismatchError

STOCK_TOOLS = Path(mmdet.__file__).parent / '.mim' / 'tools'

CONFIGS = {
    '3slice': 'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py',
    '9slice': 'elixirnet/demo/elixirnet_r18-tiny_fpn_1x_deeplesion-demo-9slice.py',
    'lens': 'lens/demo/lens-afp-multi_densenet-tiny_fpn_radam-12e_deeplesion-demo-2sets.py',
    '3d': 'aggregated3d/demo/aggregated3d_denseunet3d-tiny_luna16-demo.py',
}


def _config(family: str) -> str:
    return str(repo_root() / 'configs' / CONFIGS[family])


def run_stock_tool(tool: str, args: list, monkeypatch, cwd: Path) -> None:
    """``python mmdet/.mim/tools/<tool> ARGS`` in this process."""
    path = STOCK_TOOLS / tool
    assert path.is_file(), f'mmdet ships no {path}'
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, 'argv', [str(path)] + [str(a) for a in args])
    runpy.run_path(str(path), run_name='__main__')


def _data_options(root: Path) -> list:
    return [
        f'test_dataloader.dataset.data_root={root}/',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'
    ]


def _random_checkpoint(config: str, path: Path, seed: int = 0) -> Path:
    """Seeded random weights of the config's model, as a checkpoint."""
    cfg = Config.fromfile(config)
    init_default_scope('mmdet')
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save(
        dict(
            state_dict=model.state_dict(),
            meta=dict(dataset_meta=dict(classes=('lesion', )))), str(path))
    return path


def _close(pred, ref_boxes, ref_scores):
    inst = pred.pred_instances
    assert len(inst.scores) == len(ref_scores) > 0
    np.testing.assert_allclose(inst.bboxes.numpy(), ref_boxes, atol=1e-3)
    np.testing.assert_allclose(inst.scores.numpy(), ref_scores, atol=1e-5)


@pytest.mark.parametrize('family', ['3slice', '9slice', 'lens'])
def test_inference_apis_match_stock_test(family, tiny_demo_root, tmp_path,
                                         monkeypatch):
    """DetInferencer (ours) and mmdet's inference_detector give the boxes
    of mmdet's tools/test.py for a slice path, a stack of slices and a
    volume + key slice; pictures are windowed and named per series."""
    torch.set_num_threads(1)
    config = _config(family)
    ckpt = _random_checkpoint(config, tmp_path / 'rand.pth')
    out_pkl = tmp_path / 'out.pkl'
    run_stock_tool('test.py', [
        config, ckpt, '--work-dir', tmp_path / 'work', '--out', out_pkl,
        '--cfg-options'
    ] + _data_options(tiny_demo_root), monkeypatch, tmp_path)
    ref = mmengine.load(str(out_pkl))[0]
    path = ref['img_path']
    ref_boxes = ref['pred_instances']['bboxes'].numpy()
    ref_scores = ref['pred_instances']['scores'].numpy()

    inferencer = LesionDetInferencer(
        model=config, weights=str(ckpt), device='cpu', show_progress=False)
    out = inferencer(
        path, out_dir=str(tmp_path / 'vis_out'), return_datasamples=True)
    _close(out['predictions'][0], ref_boxes, ref_scores)
    series = osp.basename(osp.dirname(path))
    picture = tmp_path / 'vis_out' / 'vis' / f'{series}_{osp.basename(path)}'
    drawn = read_picture(picture)
    assert drawn.std() > 10  # a windowed CT slice, not a black square

    # a volume + key slice, and the stack of slices as an array
    files = sorted(Path(osp.dirname(path)).glob('*.png'))
    volume = np.stack([read_hu_png(str(f)) for f in files])
    key = [f.name for f in files].index(osp.basename(path))
    loader = next(t for t in inferencer.pipeline.transforms
                  if isinstance(t, LoadDeepLesionSlices))
    stack = LoadDeepLesionSlices(loader.num_slices, loader.interval_mm)(
        dict(img_path=path, slice_interval=ref['slice_interval']))['img']
    vol_input = dict(
        volume=volume, key_slice=key, slice_interval=ref['slice_interval'])
    preds = inferencer([stack, vol_input], return_datasamples=True)
    for pred in preds['predictions']:
        _close(pred, ref_boxes, ref_scores)

    model = init_detector(config, str(ckpt), device='cpu')
    _close(inference_detector(model, path), ref_boxes, ref_scores)
    _close(inference_detector(model, vol_input), ref_boxes, ref_scores)
    # last: mmdet's inference_detector edits model.cfg's pipeline for arrays
    _close(inference_detector(model, stack), ref_boxes, ref_scores)


def read_picture(path: Path) -> np.ndarray:
    import mmcv
    assert path.is_file(), path
    return mmcv.imread(str(path))


def test_stock_test_refuses_checkpoint_of_another_model(
        tiny_demo_root, tmp_path, monkeypatch):
    """CheckpointCheckHook comes with the config: mmdet's tools/test.py
    refuses another model's checkpoint; the documented opt-out applies to
    training only."""
    other = _random_checkpoint(
        str(repo_root() / 'configs' / 'retinanet_lesion' / 'demo' /
            'retinanet_r18-tiny_fpn_1x_deeplesion-demo.py'),
        tmp_path / 'other.pth')
    args = [_config('3slice'), other, '--work-dir', tmp_path / 'w',
            '--cfg-options'] + _data_options(tiny_demo_root)
    with pytest.raises(CheckpointMismatchError, match='other.pth'):
        run_stock_tool('test.py', args, monkeypatch, tmp_path)
    with pytest.raises(CheckpointMismatchError):
        run_stock_tool('test.py', args + ['allow_partial_load=True'],
                       monkeypatch, tmp_path)


def test_stock_analyze_logs_reads_metric_scalars(tmp_path, monkeypatch):
    """mmdet's analyze_logs keeps the text after the last '/': the FROC
    headline, its breakdowns and COCO mAP stay apart."""
    from mmlesion.evaluation.metrics import FROCMetric
    metric = FROCMetric(with_coco_map=True, dump_detections=False)
    metric.dataset_meta = dict(classes=('lesion', ))
    lesions = [
        dict(bbox=[10., 10., 30., 30.], bbox_label=0, ignore_flag=0,
             lesion_type=1, diameters_mm=[12., 8.]),
        dict(bbox=[50., 50., 80., 90.], bbox_label=0, ignore_flag=0,
             lesion_type=5, diameters_mm=[40., 20.])
    ]
    metric.process({}, [
        dict(img_id=i, img_path=f'{i}.png', ori_shape=(128, 128),
             instances=lesions,
             pred_instances=dict(
                 bboxes=torch.tensor([[10., 10., 30., 30.]]),
                 scores=torch.tensor([0.9]),
                 labels=torch.tensor([0]))) for i in range(2)
    ])
    keys = {f'froc/{k}': v
            for k, v in metric.compute_metrics(metric.results).items()}
    log = tmp_path / 'scalars.json'
    log.write_text(
        json.dumps(dict(lr=0.01, loss=1.0, epoch=1, iter=10, step=10)) + '\n'
        + json.dumps(dict(keys, step=1)) + '\n')
    # seaborn (only its set_style) is an optional plotting extra of mmdet
    seaborn = types.ModuleType('seaborn')
    seaborn.set_style = lambda style: None
    monkeypatch.setitem(sys.modules, 'seaborn', sys.modules.get(
        'seaborn', seaborn))
    spec_globals = runpy.run_path(
        str(STOCK_TOOLS / 'analysis_tools' / 'analyze_logs.py'))
    (log_dict, ) = spec_globals['load_json_logs']([str(log)])
    epoch = log_dict[1]
    assert epoch['sens@4'] == [keys['froc/sens@4']]  # not merged
    assert epoch['bbox_mAP'] == [keys['froc/bbox_mAP']]
    assert epoch['sens@4_type_bone'] == [keys['froc/sens@4_type_bone']]
    # and it plots them
    run_stock_tool('analysis_tools/analyze_logs.py', [
        'plot_curve', log, '--keys', 'sens@4', 'bbox_mAP', '--out',
        tmp_path / 'curve.png'
    ], monkeypatch, tmp_path)
    assert (tmp_path / 'curve.png').stat().st_size > 0


def _luna16_demo(tmp_path: Path) -> Path:
    """Two synthetic LUNA16-layout scans, converted (luna16.json)."""
    from mmlesion.apps.own_data import ConvertSettings, convert_dataset
    from projects.study_demo.synthetic.volumes import generate_demo_volumes
    generate_demo_volumes(
        tmp_path / 'v', num_luna=2, num_kits=0, num_lits=0,
        val_fraction=0., size_range=(64, 64), num_slices_range=(48, 48))
    root = tmp_path / 'v' / 'luna16'
    convert_dataset(ConvertSettings(
        str(root), str(root / 'luna16.json'), 'luna16',
        boxes=str(root / 'annotations.csv'), show_progress=False))
    return root


def test_stock_get_flops_on_3d_config(tmp_path, monkeypatch, capsys):
    """mmdet's get_flops.py on the 3D config: VolumeDataPreprocessor gives
    it pad_shape; the count of the 3D convolutions is theirs in full."""
    from mmengine.analysis import FlopAnalyzer
    root = _luna16_demo(tmp_path)
    options = [f'val_dataloader.dataset.data_root={root}/',
               'val_dataloader.dataset.split=train']
    run_stock_tool('analysis_tools/get_flops.py', [
        _config('3d'), '--num-images', '1', '--cfg-options'] + options,
        monkeypatch, tmp_path)
    printed = capsys.readouterr().out
    # the first scan, resampled to 1 mm, padded to multiples of 16
    shape = re.search(r'Input shape: \((\d+), (\d+), (\d+)\)', printed)
    assert shape, printed
    shape = tuple(int(v) for v in shape.groups())
    assert all(v % 16 == 0 for v in shape) and len(shape) == 3
    assert re.search(r'Flops: [\d.]+[GM]', printed), printed

    # the 3D convolutions it counts, one multiply-add per weight use: out
    # voxels x Cout x k^3 x Cin (transposed: in voxels x Cin x k^3 x Cout)
    cfg = Config.fromfile(_config('3d'))
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model).eval()
    expected = []

    def count(module, inputs, output):
        k = int(np.prod(module.kernel_size))
        if isinstance(module, torch.nn.ConvTranspose3d):
            expected.append(inputs[0].numel() * k * module.out_channels //
                            module.groups)
        else:
            expected.append(output.numel() * k * module.in_channels //
                            module.groups)

    for m in model.modules():
        if isinstance(m, (torch.nn.Conv3d, torch.nn.ConvTranspose3d)):
            m.register_forward_hook(count)
    volume = torch.zeros((1, 1) + shape)
    analyzer = FlopAnalyzer(model, (volume, ))
    analyzer.unsupported_ops_warnings(False)
    assert analyzer.by_operator()['conv'] == int(sum(expected)) > 0


def test_stock_browse_dataset_draws_key_slices(tiny_demo_root, tmp_path,
                                               monkeypatch):
    """mmdet's browse_dataset.py with a 3-slice config: the config's
    LesionLocalVisualizer shows the windowed key slice (not a black
    square) with the lesion boxes, one picture per series and slice; a
    9-slice config is refused (no wrong slice drawn)."""
    out = tmp_path / 'browse'
    run_stock_tool('analysis_tools/browse_dataset.py', [
        _config('3slice'), '--output-dir', out, '--not-show',
        '--cfg-options',
        f'train_dataloader.dataset.data_root={tiny_demo_root}/'
    ], monkeypatch, tmp_path)
    names = sorted(p.name for p in out.glob('*.png'))
    assert len(names) == 10  # the 10 training key slices, none overwritten
    assert all(len(n.split('_')) == 4 for n in names)  # 000001_01_01_041
    for name in names:
        rgb = read_picture(out / name)[..., ::-1].astype(int)
        assert rgb.std() > 10
        red = (rgb[..., 0] > 150) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)
        assert red.sum() > 20  # mmdet's palette colour of 'lesion'
    # 9 slices: mmdet passes channels 0-2, not the key slice: refused
    with pytest.raises(ValueError, match='9-slice input .*mmlesion'):
        run_stock_tool('analysis_tools/browse_dataset.py', [
            _config('9slice'), '--output-dir', tmp_path / 'b9', '--not-show',
            '--cfg-options',
            f'train_dataloader.dataset.data_root={tiny_demo_root}/'
        ], monkeypatch, tmp_path)
    assert not list((tmp_path / 'b9').glob('*.png'))


@pytest.mark.parametrize('family', ['9slice', '3d'])
def test_our_browse_dataset(family, tiny_demo_root, tmp_path, monkeypatch):
    """tools/analysis_tools/browse_dataset.py (mmdet's options): visible
    pictures, one per sample, named per series / scan."""
    if family == '3d':
        root = _luna16_demo(tmp_path)
        options = [
            f'train_dataloader.dataset.dataset.data_root={root}/',
            'train_dataloader.dataset.times=1'
        ]
    else:
        options = [f'train_dataloader.dataset.data_root={tiny_demo_root}/']
    tool = runpy.run_path(
        str(repo_root() / 'tools' / 'analysis_tools' / 'browse_dataset.py'))
    written = tool['main']([
        _config(family), '--output-dir',
        str(tmp_path / 'browse'), '--not-show', '--cfg-options'
    ] + options)
    assert written and len(set(written)) == len(written)
    for path in written:
        assert read_picture(Path(path)).std() > 10
    if family == '9slice':
        assert all('_' in osp.basename(p) for p in written)  # <series>_


def test_inferencer_refuses_3d_config(tmp_path):
    with pytest.raises(ValueError, match='infer_volume'):
        LesionDetInferencer(model=_config('3d'), device='cpu')


def test_user_config_inherits_installed_configs(tiny_demo_root, tmp_path):
    """A wheel carries the configs (mmlesion/.mim/configs, as mmdet); a
    config in the user's own folder inherits one through
    lesion_config_path and builds; installed, through 'mmlesion::' too:
    mmdet's stock test.py runs it once mmlesion is imported (README "Use
    our configs")."""
    import shutil
    import subprocess
    src = tmp_path / 'src'  # setup.py writes mmlesion/.mim: not in the repo
    for name in ('mmlesion', 'configs', 'tools', 'requirements', 'projects'):
        shutil.copytree(repo_root() / name, src / name,
                        ignore=shutil.ignore_patterns('__pycache__', '.mim'))
    for name in ('setup.py', 'README.md', 'model-index.yml'):
        shutil.copy(repo_root() / name, src / name)
    wheel_dir = tmp_path / 'wheel'
    subprocess.run([
        sys.executable, '-m', 'pip', 'wheel',
        str(src), '--no-deps', '--no-build-isolation', '-q', '-w',
        str(wheel_dir)
    ], check=True, cwd=tmp_path)
    (wheel, ) = wheel_dir.glob('mmlesion-*.whl')
    names = zipfile.ZipFile(wheel).namelist()
    assert 'mmlesion/.mim/configs/' + CONFIGS['3slice'] in names
    assert 'mmlesion/.mim/configs/_base_/default_runtime.py' in names
    # the model index and each method's metafile, as mmdet ships them
    assert 'mmlesion/.mim/model-index.yml' in names
    assert 'mmlesion/.mim/configs/elixirnet/metafile.yml' in names
    # the library's data files (read by it and by the tools' --help)
    for data in (repo_root() / 'mmlesion').glob('*/**/*.json'):
        assert data.relative_to(repo_root()).as_posix() in names
    # the laboratory (projects/) is not installed
    assert not [n for n in names if n.startswith('projects/')]

    user = tmp_path / 'my_project' / 'my_detector.py'
    user.parent.mkdir()
    user.write_text(
        "_base_ = [__import__('mmlesion.utils', fromlist=['_'])."
        "lesion_config_path('" + CONFIGS['3slice'] + "')]\n"
        "model = dict(rpn_head=dict(anchor_generator=dict(scales=[4])))\n")
    cfg = Config.fromfile(str(user))
    assert cfg.model.rpn_head.anchor_generator.scales == [4]
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'FasterRCNN'

    # installed: 'mmlesion::' bases, built through mmlesion's registry tree
    site = tmp_path / 'site'
    subprocess.run([
        sys.executable, '-m', 'pip', 'install', '--no-deps', '-q',
        '--target', str(site), str(wheel)
    ], check=True, cwd=tmp_path)
    scoped = user.parent / 'my_scoped_detector.py'
    scoped.write_text(f"_base_ = 'mmlesion::{CONFIGS['3slice']}'\n")
    env = dict(os.environ, PYTHONPATH=str(site), OMP_NUM_THREADS='1')
    # a mistyped config: the closest of the installed configs, by its path
    typo = 'faster-rcnn_r18_fpn_36e_deeplesion-dmeo.py'
    run = subprocess.run([
        sys.executable, '-c', 'import sys; from mmlesion_cli.common_args '
        'import config_file_error; print(config_file_error(sys.argv[1]))',
        typo], cwd=user.parent, env=env, capture_output=True, text=True)
    installed = site / 'mmlesion' / '.mim' / 'configs' / CONFIGS['3slice']
    assert run.stdout.strip() == (f'config {typo}: no such file; did you '
                                  f'mean {installed.resolve()}?'), run.stderr
    ckpt = _random_checkpoint(_config('3slice'), tmp_path / 'rand.pth')
    stock_test = (
        'import runpy, sys\n'
        'import mmlesion\n'
        'assert mmlesion.__file__.startswith(sys.argv[1]), mmlesion.__file__\n'
        'sys.argv = sys.argv[2:]\n'
        "runpy.run_path(sys.argv[0], run_name='__main__')\n")
    run = subprocess.run([
        sys.executable, '-c', stock_test, str(site),
        str(STOCK_TOOLS / 'test.py'), scoped, ckpt, '--work-dir',
        tmp_path / 'work', '--cfg-options'
    ] + _data_options(tiny_demo_root), cwd=user.parent, env=env,
        capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert 'froc/sens@4' in run.stdout + run.stderr
    # without importing mmlesion first, mmengine 0.10.7 refuses the prefix
    run = subprocess.run([
        sys.executable, '-c', 'import sys; from mmengine.config import '
        'Config; Config.fromfile(sys.argv[1])', scoped
    ], cwd=user.parent, env=env, capture_output=True, text=True)
    assert 'does not support to load mmlesion config' in run.stderr
