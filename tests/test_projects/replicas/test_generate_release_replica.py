# Copyright (c) mmlesion contributors. All rights reserved.
"""projects/replicas/tools/generate_release_replica.py, and the documented converter
commands (data/README.md, configs/*/README.md) run on its replicas."""
import importlib.util
import json
import shutil

import pytest

from mmlesion.datasets.replica_marker import find_replica_marker
from mmlesion.testing import repo_root

ROOT = repo_root()


def _tool(relative: str):
    spec = importlib.util.spec_from_file_location(
        relative.replace('/', '_')[:-3], ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _replica(dataset, out, *extra) -> int:
    return _tool('projects/replicas/tools/generate_release_replica.py').main(
        [dataset, '--out', str(out), '--size', 'tiny', '--quiet', *extra])


def _annotation_file(path):
    data = json.loads(path.read_text())
    return data['volumes'], [a for v in data['volumes']
                             for a in v['annotations']]


def test_cli_writes_refuses_and_overwrites(tmp_path, capsys):
    out = tmp_path / 'LiTS'
    assert _replica('lits', out) == 0
    assert find_replica_marker(out)['dataset'] == 'lits'
    assert _replica('lits', out) == 1
    assert 'not empty' in capsys.readouterr().err
    assert _replica('lits', out, '--overwrite', '--seed', '3') == 0
    assert find_replica_marker(out)['seed'] == '3'
    tool = _tool('projects/replicas/tools/generate_release_replica.py')
    assert tool.main(['kits19', '--out', str(tmp_path / 'k'), '--size',
                      'tiny']) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary['dataset'] == 'kits19' and summary['bytes'] > 0


def test_kits19_converter(tmp_path):
    root = tmp_path / 'kits19'
    assert _replica('kits19', root) == 0
    out = root / 'kits19.json'
    # data/README.md: kits19.py data/kits19/data --out data/kits19/kits19.json
    assert _tool('tools/dataset_converters/kits19.py').main(
        [str(root / 'data'), '--out', str(out)]) == 0
    volumes, lesions = _annotation_file(out)
    assert [v['id'] for v in volumes] == ['case_00000']  # test case skipped
    assert lesions
    # configs/elixirnet/README.md, Table 3: the 2D export; the one
    # annotated case of the tiny replica cannot fill a test split (one
    # line), so it is converted without one
    export = tmp_path / 'kits19_2d'
    argv = [str(root / 'data'), '--out', str(root / 'kits19_volumes.json'),
            '--export-2d', str(export), '--val-fraction', '0',
            '--test-fraction', '0.2', '--key-slices', 'every',
            '--num-slices', '3', '--negatives-per-key', '0']
    main = _tool('tools/dataset_converters/kits19.py').main
    assert main(argv) == 1 and not export.exists()
    argv[argv.index('0.2')] = '0'
    assert main(argv) == 0
    assert (export / 'DL_info.csv').is_file()


def test_lits_converter(tmp_path):
    root = tmp_path / 'LiTS'
    assert _replica('lits', root) == 0
    # configs/lens/README.md: lits.py data/LiTS --out ... --export-2d ...
    assert _tool('tools/dataset_converters/lits.py').main([
        str(root), '--out', str(root / 'lits.json'), '--export-2d',
        str(tmp_path / 'lens' / 'lits')
    ]) == 0
    volumes, lesions = _annotation_file(root / 'lits.json')
    assert sorted(v['id'] for v in volumes) == ['volume-0', 'volume-28']
    assert lesions and (tmp_path / 'lens' / 'lits' / 'DL_info.csv').is_file()


def test_nih_ln_converter(tmp_path):
    root = tmp_path / 'nih_ln'
    assert _replica('nih_ln', root) == 0
    # data/README.md: nih_ln.py SCANS MASKS --out data/nih_ln.json
    assert _tool('tools/dataset_converters/nih_ln.py').main([
        str(root / 'CT Lymph Nodes'), str(root / 'MED_ABD_LYMPH_MASKS'),
        '--out', str(root / 'nih_ln.json'), '--export-2d',
        str(tmp_path / 'lens' / 'nih_ln')
    ]) == 0
    volumes, lesions = _annotation_file(root / 'nih_ln.json')
    assert sorted(v['id'] for v in volumes) == ['ABD_LYMPH_001',
                                                'MED_LYMPH_001']
    assert len(lesions) >= 2


def _luna_args(root, out):
    return [str(root), '--annotations', str(root / 'annotations.csv'),
            '--excluded', str(root / 'annotations_excluded.csv'),
            '--seriesuids', str(root / 'seriesuids.csv'), '--out', str(out)]


def test_luna16_converter_without_lung_masks(tmp_path):
    root = tmp_path / 'LUNA16'
    assert _replica('luna16', root) == 0
    # the lung masks unpacked beside the scan root instead of inside it
    shutil.move(str(root / 'seg-lungs-LUNA16'), str(tmp_path))
    out = root / 'annotations' / 'luna16.json'
    assert _tool('tools/dataset_converters/luna16.py').main(
        _luna_args(root, out)) == 0
    volumes, lesions = _annotation_file(out)
    uids = (root / 'seriesuids.csv').read_text().split()
    assert sorted(v['id'] for v in volumes) == sorted(uids)
    ignored = [a for a in lesions if a['ignore']]
    assert ignored and len(lesions) > len(ignored)


def test_luna16_documented_command_with_lung_masks(tmp_path):
    """The release as it unpacks (lung masks in seg-lungs-LUNA16/, same
    file names as the scans) converts: the masks are not taken for scans."""
    root = tmp_path / 'LUNA16'
    assert _replica('luna16', root) == 0
    out = root / 'annotations' / 'luna16.json'
    assert _tool('tools/dataset_converters/luna16.py').main(
        _luna_args(root, out)) == 0
    assert out.is_file()
