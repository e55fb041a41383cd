# Copyright (c) mmlesion contributors. All rights reserved.
"""Is the data a config reads where and as it expects, before anything is
built?

:func:`check_data_root` checks the files each dataset of the config's
dataloaders opens first (DeepLesion layout and split rows, volume JSON,
``CropToLungs``' lung masks, LENS FPR proposals); a missing piece raises
:class:`DataLayoutError` in one line: what, where, and the command (or
download) that makes it. A release replica (``REPLICA.txt``) is returned as
a warning line naming it as synthetic. :func:`name_evaluated_data` says in
a few words what a dataloader reads.
"""
import csv
import glob
import os.path as osp
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

#: How each public release is made ready, by the folder name the docs use.
_CONVERT = {
    'luna16': ('python tools/dataset_converters/luna16.py {root} '
               '--annotations {root}/annotations.csv --excluded '
               '{root}/annotations_excluded.csv --seriesuids '
               '{root}/seriesuids.csv --out {out}'),
    'kits19': 'python tools/dataset_converters/kits19.py {root}/data --out {out}',
    'lits': 'python tools/dataset_converters/lits.py {root} --out {out}',
    'nih_ln': 'python tools/dataset_converters/nih_ln.py SCANS MASKS --out {out}',
}
_RELEASE_ROOTS = {'luna16': 'data/LUNA16', 'kits19': 'data/kits19',
                  'lits': 'data/LiTS', 'nih_ln': 'SCANS'}
_DOWNLOAD = {
    'deeplesion': 'download the DeepLesion release (DL_info.csv and '
                  'Images_png/, data/README.md)',
    'luna16': 'download LUNA16 (subset0..subset9/, annotations.csv, '
              'annotations_excluded.csv, seriesuids.csv; data/README.md)',
    'kits19': 'download KiTS19 (data/case_XXXXX/imaging.nii.gz; '
              'data/README.md)',
    'lits': 'download LiTS (volume-N.nii, segmentation-N.nii; data/README.md)',
    'nih_ln': 'download the TCIA "CT Lymph Nodes" scans and masks '
              '(data/README.md)',
}
_SPLITS = {'train': 1, 'val': 2, 'test': 3}
_SPLIT_NAMES = {v: k for k, v in _SPLITS.items()}
#: Dataset types read in DeepLesion's layout (DL_info.csv + Images_png/).
DEEPLESION_TYPES = ('DeepLesionDataset', 'DeepLesionMinedDataset',
                    'DeepLesionDataset3D')
VOLUME_TYPES = ('CTVolumeDataset', 'CrossValVolumeDataset')


class DataLayoutError(FileNotFoundError):
    """A data root of a config is not in the layout the dataset reads (one
    line: what, where, and how to make it)."""


def _type_name(ds: Dict[str, Any]) -> str:
    t = ds.get('type', '')
    return t if isinstance(t, str) else getattr(t, '__name__', str(t))


def iter_datasets(cfg: Any, loaders: Sequence[str] = (
        'train_dataloader', 'val_dataloader', 'test_dataloader')
                  ) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """``(dataloader name, dataset dict)`` of every leaf dataset of the
    config's dataloaders, wrappers unrolled (``dataset``, ``datasets``)."""

    def walk(ds: Any) -> Iterator[Dict[str, Any]]:
        if not isinstance(ds, dict):
            return
        inner = ds.get('datasets')
        if isinstance(inner, (list, tuple)):
            for d in inner:
                yield from walk(d)
        elif isinstance(ds.get('dataset'), dict):
            yield from walk(ds['dataset'])
        else:
            yield ds

    for name in loaders:
        loader = cfg.get(name) if hasattr(cfg, 'get') else None
        if isinstance(loader, dict) and loader.get('dataset') is not None:
            for ds in walk(loader['dataset']):
                yield name, ds


def _join(root: Optional[str], path: Optional[str]) -> Optional[str]:
    if path is None:
        return None
    return path if not root or osp.isabs(path) else osp.join(root, path)


def _release_of(path: str) -> Optional[str]:
    """Which public release a path is made from, by the docs' names."""
    low = path.replace('\\', '/').lower()
    return next((key for key in ('nih_ln', 'luna16', 'kits19', 'lits',
                                 'deeplesion') if key in low), None)


#: The section of data/README.md that says where each kind of data comes
#: from.
_README = {
    'demo': 'data/README.md#demo-data-synthetic-same-layout',
    'deeplesion': 'data/README.md#deeplesion-real-data',
    'volumes': 'data/README.md#ct-volumes-luna16-kits19-lits-nih-ln',
}


def readme_section(path: str) -> str:
    """The data/README.md section that says where ``path`` comes from."""
    p = _norm(path)
    if '/demo_deeplesion' in f'/{p}':
        return _README['demo']
    release = _release_of(p)
    if release is None:
        return 'data/README.md'
    return _README['deeplesion' if release == 'deeplesion' else 'volumes']


def _norm(path: str) -> str:
    return osp.normpath(path).replace('\\', '/')


def check_release_root(dataset: str, root: str) -> None:
    """Raise :class:`DataLayoutError` when ``root`` is not the layout the
    release ``dataset`` is downloaded in (``deeplesion``, ``luna16``,
    ``kits19``, ``lits``)."""
    r = _norm(root)
    get = _DOWNLOAD.get(dataset, 'see data/README.md')
    if not osp.isdir(root):
        raise DataLayoutError(f'{r}/ not found: {get}')
    if dataset == 'deeplesion':
        for part, kind in (('DL_info.csv', osp.isfile),
                           ('Images_png', osp.isdir)):
            if not kind(osp.join(root, part)):
                raise DataLayoutError(
                    f'{r}/{part}{"/" if kind is osp.isdir else ""} not '
                    f'found: a DeepLesion root holds DL_info.csv and '
                    f'Images_png/ ({get})')
    elif dataset == 'luna16':
        if not glob.glob(osp.join(root, 'subset[0-9]')):
            raise DataLayoutError(
                f'{r}/subset0..subset9/ not found: a LUNA16 root holds the '
                f'unpacked subset folders ({get})')
        for csv_name in ('annotations.csv', 'seriesuids.csv'):
            if not osp.isfile(osp.join(root, csv_name)):
                raise DataLayoutError(f'{r}/{csv_name} not found: {get}')
    elif dataset == 'kits19':
        if not glob.glob(osp.join(root, 'data', 'case_*')):
            raise DataLayoutError(
                f'{r}/data/case_XXXXX/ not found: a KiTS19 root holds data/ '
                f'with one folder per case ({get})')
    elif dataset == 'lits':
        if not glob.glob(osp.join(root, '**', 'volume-*.nii*'),
                         recursive=True):
            raise DataLayoutError(
                f'{r}/**/volume-N.nii not found: {get}')


def _make_hint(path: str, ds_type: str) -> str:
    """How the missing ``path`` is made (the first missing step)."""
    p = _norm(path)
    name = osp.basename(p)
    release = _release_of(p)
    if '/demo_deeplesion' in f'/{p}':
        root = p.split('demo_deeplesion')[0] + 'demo_deeplesion'
        return ('make it with `python tools/misc/generate_demo_data.py '
                f'--out {root}`')
    if name == 'lens_mined.json':
        return ('make it with `python tools/lens_mine_annotations.py '
                f'<LENS row (c) config> <its checkpoint> --out {p}` '
                '(configs/lens/README.md)')
    if name == 'lens_fpr_proposals.json':
        return ('make it with `python tools/lens_fpr_proposals.py <LENS '
                'row (d) config> <its checkpoint> --mined '
                f'{osp.dirname(p)}/lens_mined.json --out {p}` '
                '(configs/lens/README.md)')
    if name.startswith('deeplesion3d_'):
        out = osp.dirname(p)
        check_release_root('deeplesion', 'data/DeepLesion')
        return ('make it with `python tools/dataset_converters/'
                'deeplesion_to_3d.py data/DeepLesion/DL_info.csv '
                f'data/DeepLesion/Images_png {out}`')
    if ds_type in VOLUME_TYPES and release in _CONVERT:
        root = _RELEASE_ROOTS[release]
        if release == 'luna16' and p.startswith(
                ('data/LUNA16/', _norm(osp.abspath('data/LUNA16')) + '/')):
            root = p.split('/annotations/')[0] if '/annotations/' in p \
                else osp.dirname(p)
        if release != 'nih_ln' and osp.isdir(root):
            check_release_root(release, root)
        return 'make it with `' + _CONVERT[release].format(
            root=root, out=p) + '`'
    if release in ('luna16', 'kits19', 'lits', 'nih_ln'):
        # a 2D export in DeepLesion's layout
        out = p.split('/DL_info.csv')[0].split('/Images_png')[0].split(
            '/lens_extra_slices.json')[0]
        volumes = {'luna16': 'data/LUNA16/luna16.json',
                   'kits19': 'data/kits19/kits19_volumes.json',
                   'lits': 'data/LiTS/lits.json',
                   'nih_ln': 'data/nih_ln.json'}[release]
        root = _RELEASE_ROOTS[release]
        cmd = _CONVERT[release].format(root=root, out=volumes)
        return (f'it is a 2D export: make it with `{cmd} --export-2d {out}` '
                '(the method README gives the options)')
    if release == 'deeplesion':
        return _DOWNLOAD['deeplesion']
    return 'see data/README.md'


def _missing(path: str, ds_type: str, folder: bool = False) -> None:
    p = _norm(path) + ('/' if folder else '')
    raise DataLayoutError(f'{p} not found: {_make_hint(path, ds_type)}')


def _split_rows(csv_path: str) -> Dict[int, int]:
    """Rows per ``Train_Val_Test`` value of a DL_info.csv."""
    counts: Dict[int, int] = {}
    with open(csv_path, newline='', encoding='utf-8-sig',
              errors='replace') as f:
        reader = csv.reader(f)
        header = next(reader, [])
        names = [h.strip() for h in header]
        col = next((names.index(n) for n in ('Train_Val_Test', 'split')
                    if n in names), None)
        if col is None:
            return counts
        for row in reader:
            try:
                value = int(float(row[col]))
            except (IndexError, ValueError):
                continue
            counts[value] = counts.get(value, 0) + 1
    return counts


def _check_deeplesion(ds: Dict[str, Any], ds_type: str) -> str:
    root = ds.get('data_root') or ''
    if root and not osp.isdir(root):
        if _release_of(root) == 'deeplesion' and 'demo' not in root:
            check_release_root('deeplesion', root)
        _missing(root, ds_type, folder=True)
    ann = _join(root, ds.get('ann_file', 'DL_info.csv'))
    if not osp.isfile(ann):
        _missing(ann, ds_type)
    prefix = ds.get('data_prefix') or {}
    img = _join(root, prefix.get('img', 'Images_png/') if isinstance(
        prefix, dict) else 'Images_png/')
    if img and not osp.isdir(img):
        _missing(img, ds_type, folder=True)
    mined = ds.get('mined_ann_file')
    if mined:
        mined = _join(root, mined)
        if not osp.isfile(mined):
            _missing(mined, ds_type)
    split = ds.get('split')
    value = _SPLITS.get(split, split) if isinstance(split, str) else split
    if isinstance(value, int) and ann.endswith('.csv'):
        counts = _split_rows(ann)
        if counts and not counts.get(value):
            present = ', '.join(f'{_SPLIT_NAMES.get(k, k)}: {n}'
                                for k, n in sorted(counts.items()))
            raise DataLayoutError(
                f'{_norm(ann)} has no row of split '
                f'{_SPLIT_NAMES.get(value, value)!r} (Train_Val_Test = '
                f'{value}; rows per split: {present}): '
                f'{_split_hint(ann, value)}')
    return root


def _split_hint(ann: str, value: int) -> str:
    release = _release_of(ann)
    if release in ('luna16', 'kits19', 'lits', 'nih_ln'):
        flag = {2: '--val-fraction', 3: '--test-fraction'}.get(value)
        if flag:
            return (f'export it again with {flag} above 0, or drop the '
                    'dataloader of that split')
    return 'use the release as published, or set the dataset\'s split'


def _check_volumes(ds: Dict[str, Any], ds_type: str) -> str:
    root = ds.get('data_root') or ''
    ann = _join(root, ds.get('ann_file'))
    if ann and not osp.isfile(ann):
        _missing(ann, ds_type)
    for step in ds.get('pipeline') or []:
        if isinstance(step, dict):
            for t in ([step] + list(step.get('transforms') or [])):
                mask_dir = isinstance(t, dict) and t.get('mask_dir')
                if mask_dir and not osp.isdir(mask_dir):
                    raise DataLayoutError(
                        f'{_norm(mask_dir)}/ not found: unpack the '
                        'official lung masks (seg-lungs-LUNA16.zip) there, '
                        "or set CropToLungs' mask_dir=None to compute them")
    return ann or root


def check_dataset(ds: Dict[str, Any]) -> Optional[str]:
    """Check one dataset dict; return the folder (DeepLesion layout) or
    annotation file (volumes) it reads, for the replica check; None for a
    type not checked."""
    ds_type = _type_name(ds)
    if ds_type in DEEPLESION_TYPES:
        return _check_deeplesion(ds, ds_type)
    if ds_type in VOLUME_TYPES:
        return _check_volumes(ds, ds_type)
    if ds_type == 'LENSFPRPatchDataset':
        _check_volumes(dict(ds, pipeline=None), ds_type)  # its ann_file
        return ds.get('data_root') or ''
    return None


def check_data_root(cfg: Any, loaders: Sequence[str] = (
        'train_dataloader', 'val_dataloader', 'test_dataloader')
                    ) -> List[str]:
    """Check the data of the config's dataloaders before the Runner builds
    anything (see the module docstring).

    Args:
        cfg: an mmengine ``Config`` (or a dict with the dataloaders).
        loaders: which dataloaders to check (``tools/test.py`` needs only
            ``test_dataloader``).

    Returns:
        list[str]: one warning line per release replica the config reads.

    Raises:
        DataLayoutError: the first missing piece, in one line.
    """
    from .replica_marker import replica_warning
    warnings: List[str] = []
    seen = set()
    for _, ds in iter_datasets(cfg, loaders):
        key = (_type_name(ds), ds.get('data_root'), ds.get('ann_file'),
               ds.get('split'), ds.get('mined_ann_file'))
        if key in seen:
            continue
        seen.add(key)
        folder = check_dataset(ds)
        line = replica_warning(folder) if folder else None
        if line and line not in warnings:
            warnings.append(line)
    return warnings


def warn_data_layout(cfg: Any, loaders: Sequence[str] = (
        'train_dataloader', 'val_dataloader', 'test_dataloader')) -> None:
    """:func:`check_data_root` for the tools: a layout error ends the run
    with its one line (``error: ...``, exit status 1), replica warnings are
    printed to stderr."""
    import sys
    try:
        lines = check_data_root(cfg, loaders)
    except DataLayoutError as err:
        sys.exit(f'error: {err}')
    for line in lines:
        print(f'warning: {line}', file=sys.stderr)


def name_evaluated_data(cfg: Any, loader: str = 'test_dataloader',
                        evaluator: str = 'test_evaluator') -> str:
    """What a dataloader of the config reads, in a few words, also given to
    its evaluator's ``FROCMetric`` (``split``: the curve's title).

    Args:
        cfg: an mmengine ``Config``; its evaluator is changed in place.
        loader (str): the dataloader evaluated.
        evaluator (str): its evaluator's key.

    Returns:
        str: e.g. ``test split: data/demo_deeplesion/DL_info.csv`` (the
        dataset's ``split``, else only its annotation file), ``' + '``
        between the datasets of a wrapper.
    """
    parts = []
    for _, ds in iter_datasets(cfg, (loader, )):
        split = _SPLIT_NAMES.get(ds.get('split'), ds.get('split'))
        where = _join(ds.get('data_root'), ds.get('ann_file')) or \
            ds.get('data_root') or _type_name(ds)
        parts.append(where if split is None else f'{split} split: {where}')
    text = ' + '.join(dict.fromkeys(parts)) or f'no dataset in {loader}'
    metrics = cfg.get(evaluator)
    for metric in metrics if isinstance(metrics, list) else [metrics]:
        if isinstance(metric, dict) and metric.get('type') == 'FROCMetric':
            metric.setdefault('split', text)
    return text
