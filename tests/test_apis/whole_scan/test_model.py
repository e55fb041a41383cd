# Copyright (c) mmlesion contributors. All rights reserved.
"""What tools/infer_volume.py tells a user about the model and the sizes:
no mmdet "COCO classes" message for a given checkpoint, a warning on every
output for weights trained on the synthetic demo data, and sizes that say
what they measure; what a result records of its config."""
import hashlib
import importlib.util
import json
import logging
import re
import warnings

import pytest
import torch
from mmengine.config import Config

from mmlesion.apis.detector_loader import init_lesion_detector
from mmlesion.apis.whole_scan.model import (DEMO_MODEL_WARNING,
                                            config_record,
                                            demo_model_warning,
                                            is_demo_data_root,
                                            training_data_roots,
                                            training_data_roots_of_text)
from mmlesion.apis.whole_scan.write import describe_size
from mmlesion.testing import get_config, repo_root
from tests.helpers.volume_demo import DEMO_CFG, scans_and_random_checkpoint

REAL_ROOT = 'train_dataloader.dataset.data_root=/data/DeepLesion/'


@pytest.fixture(scope='module')
def scan_and_checkpoint(tmp_path_factory):
    """A small synthetic chest scan and random weights of the demo model in
    a checkpoint saved by hand: no ``dataset_meta``, no config (the case
    where mmdet falls back to its COCO classes)."""
    (scan, ), ckpt = scans_and_random_checkpoint(tmp_path_factory)
    return scan, ckpt


def _run_tool(scan, ckpt, out, *extra) -> int:
    spec = importlib.util.spec_from_file_location(
        'infer_volume_tool', repo_root() / 'tools' / 'infer_volume.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    torch.set_num_threads(1)
    return tool.main([
        str(repo_root() / 'configs' / DEMO_CFG), str(ckpt), str(scan),
        '--out-dir', str(out), '--score-thr', '0.01', '--pixel-spacing',
        '1.4', *extra])


def test_no_coco_classes_message_with_a_checkpoint(scan_and_checkpoint,
                                                   tmp_path, monkeypatch,
                                                   capsys, caplog):
    """mmdet's "checkpoint is None, use COCO classes by default" is neither
    warned nor logged nor printed, and the class names are the config's."""
    scan, ckpt = scan_and_checkpoint
    messages = []
    real_warn = warnings.warn

    def spy(message, *args, **kwargs):  # sees it despite warning filters
        messages.append(str(message))
        return real_warn(message, *args, **kwargs)

    monkeypatch.setattr(warnings, 'warn', spy)
    with caplog.at_level(logging.INFO):
        assert _run_tool(scan, ckpt, tmp_path / 'out') == 0
    printed = capsys.readouterr()
    for text in messages + [caplog.text, printed.out, printed.err]:
        assert 'COCO classes' not in str(text)
    model = init_lesion_detector(get_config(DEMO_CFG), str(ckpt)).model
    assert tuple(model.dataset_meta['classes']) == ('lesion', )
    assert not [m for m in messages if 'COCO' in m]


def test_demo_training_data_is_recognised(tmp_path):
    cfg = get_config(DEMO_CFG)
    assert training_data_roots(cfg) == ['data/demo_deeplesion/']
    # a checkpoint's config text is parsed, not executed
    text = cfg.pretty_text + "\nimport os\nos.remove('nothing')\n"
    assert training_data_roots_of_text(text) == ['data/demo_deeplesion/']
    assert training_data_roots_of_text('not python (') == []
    for root in ('data/demo_deeplesion/', '/abs/data/demo_lung',
                 'data/demo_volumes/luna16/', 'data/study_volumes/luna16/'):
        assert is_demo_data_root(root), root
    for root in ('data/DeepLesion/', '/data/luna16/', '', 'data/demo'):
        assert not is_demo_data_root(root), root
    # generated elsewhere: the generators' marker files tell
    dl = tmp_path / 'my_set'
    dl.mkdir()
    assert not is_demo_data_root(str(dl))
    (dl / 'demo_meta.json').write_text('{"generator": "mmlesion.datasets.'
                                       'demo", "config": {}}')
    assert is_demo_data_root(str(dl))
    vol = tmp_path / 'vols' / 'luna16'
    vol.mkdir(parents=True)
    (vol.parent / 'ground_truth.json').write_text('{"generator": "other"}')
    assert not is_demo_data_root(str(vol))
    (vol.parent / 'ground_truth.json').write_text(
        '{"generator": "mmlesion.datasets.demo.volumes"}')
    assert is_demo_data_root(str(vol) + '/')
    # the checkpoint's training config decides over the given one
    real = get_config(DEMO_CFG)
    real.merge_from_dict({REAL_ROOT.split('=')[0]: '/data/DeepLesion/'})
    assert demo_model_warning(cfg) == DEMO_MODEL_WARNING
    assert demo_model_warning(real) is None
    assert demo_model_warning(real, dict(cfg=cfg.pretty_text)) == \
        DEMO_MODEL_WARNING
    assert demo_model_warning(cfg, dict(cfg=real.pretty_text)) is None


def test_demo_weights_warn_everywhere_and_sizes_are_named(
        scan_and_checkpoint, tmp_path, capsys):
    scan, ckpt = scan_and_checkpoint
    out = tmp_path / 'demo'
    assert _run_tool(scan, ckpt, out) == 0
    stdout = capsys.readouterr().out
    record = json.loads((out / 'findings.json').read_text())
    assert record['model_warning'] == DEMO_MODEL_WARNING
    assert next(iter(record)) == 'model_warning'  # first in the file
    assert stdout.count(DEMO_MODEL_WARNING) == 1
    page = (out / 'report.html').read_text()
    banner = page.index('class="model-warning"')
    assert banner < page.index('<h1>') and DEMO_MODEL_WARNING in page[
        banner:page.index('<h1>')]

    # sizes: named in the console, the report and findings.json
    findings = record['findings']
    assert findings and all(
        f['largest_box_side_mm'] == f['diameter_mm'] for f in findings)
    assert 'mm (RECIST' not in stdout
    for f in findings[:5]:
        rec = f['recist']
        text = (f"largest box side {f['largest_box_side_mm']:.1f} mm; "
                f"RECIST long axis {rec['long_axis_mm']:.1f} mm x short axis "
                f"{rec['short_axis_mm']:.1f} mm")
        assert describe_size(f) == text and text in stdout
        assert (f"<td>{f['largest_box_side_mm']:.1f}</td><td>"
                f"{rec['long_axis_mm']:.1f} x {rec['short_axis_mm']:.1f}</td>"
                ) in page
    assert re.search(r'<th>largest box side mm</th>\s*<th>RECIST long axis '
                     r'x short axis mm</th>', page)
    assert 'diameter mm' not in page

    # the same weights, the config's training data real: no warning
    out = tmp_path / 'real'
    assert _run_tool(scan, ckpt, out, '--cfg-options', REAL_ROOT) == 0
    stdout = capsys.readouterr().out
    record = json.loads((out / 'findings.json').read_text())
    assert record['model_warning'] is None
    assert 'synthetic demo data' not in stdout
    assert 'class="model-warning"' not in (out / 'report.html').read_text()


def test_describe_size_without_recist():
    assert describe_size(dict(diameter_mm=12.345, recist=None)) == \
        'largest box side 12.3 mm'


def test_2d_inferencer_takes_the_config_classes_silently(
        scan_and_checkpoint):
    """LesionDetInferencer with a checkpoint without class names: the
    config's classes, without mmdet's (then wrong) COCO message."""
    from mmlesion.apis import LesionDetInferencer
    _, ckpt = scan_and_checkpoint
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        inferencer = LesionDetInferencer(
            model=str(repo_root() / 'configs' / DEMO_CFG), weights=str(ckpt),
            device='cpu', show_progress=False)
    assert tuple(inferencer.model.dataset_meta['classes']) == ('lesion', )
    assert not [w for w in caught if 'COCO' in str(w.message)]


FULL_CFG = ('elixirnet/elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-'
            '3slice.py')


def test_config_text_loads_back_to_the_config_as_run():
    """The recorded text is the whole config as run (an option merged),
    loadable to the same dict; its SHA-256 is the text's."""
    cfg = get_config(FULL_CFG)
    cfg.merge_from_dict({'model.test_cfg.rcnn.max_per_img': 77})
    record = config_record(cfg, str(repo_root() / 'configs' / FULL_CFG))
    assert record.path == str(repo_root() / 'configs' / FULL_CFG)
    assert record.sha256 == hashlib.sha256(
        record.text.encode('utf-8')).hexdigest()
    back = Config.fromstring(record.text, '.py')
    assert back.to_dict() == cfg.to_dict()
    assert back.model.test_cfg.rcnn.max_per_img == 77
