# Copyright (c) mmlesion contributors. All rights reserved.
"""Recognise weights trained on mmlesion's synthetic demo data.

The demo models (``tools/run_demo.py``, the ``demo/`` configs) learn from
synthetic phantoms: on a real scan their findings mean nothing, however
confident the scores look. :func:`demo_model_warning` tells such a model
apart so that ``findings.json``, ``report.html`` and the console say so.

The rule: a model counts as trained on the demo data when a **training
data root** of **the config it was trained with** is a demo set. Both
parts, in order:

1. *The config it was trained with* is the one mmengine's ``Runner`` saves
   in every checkpoint (``meta['cfg']``, its text). That text is parsed,
   never executed (a checkpoint is data, not code). A checkpoint without it
   (weights saved by hand or converted) falls back to the config given to
   the tool.
2. *A training data root* is every ``data_root`` inside
   ``train_dataloader`` (wrappers and multi-dataset configs included). It
   is a demo set when one of its folders has the name the demo generators
   write to (:data:`DEMO_DATA_FOLDERS`: ``data/demo_deeplesion``,
   ``data/demo_lung``, ``data/demo_volumes``, ``data/study_volumes``), or
   when the folder exists here and holds the marker file of a generator
   (``demo_meta.json``, or ``ground_truth.json`` in it or its parent, with
   ``"generator": "mmlesion.datasets.demo..."``), which covers demo data
   generated elsewhere (``tools/run_demo.py --data-root DIR``).

The config's file name is not used: a demo config fine-tuned on real data
(its ``data_root`` overridden) trains on real data, and a renamed copy of
a demo config still reads the demo data.
"""
import ast
import json
import os.path as osp
from pathlib import PurePath
from typing import Any, Iterator, List, Mapping, Optional

#: The ``model_warning`` of ``findings.json`` for a demo-trained model.
DEMO_MODEL_WARNING = ('trained on synthetic demo data: findings are not '
                      'clinically meaningful')
#: Folder names the demo data generators and tools write to by default.
DEMO_DATA_FOLDERS = ('demo_deeplesion', 'demo_lung', 'demo_volumes',
                     'study_volumes')
#: ``generator`` of the marker files the demo generators write.
DEMO_GENERATOR = 'mmlesion.datasets.demo'
#: Marker files: in the data root, and (volume sets) in its parent.
_MARKERS = (('demo_meta.json', 'ground_truth.json'), ('ground_truth.json', ))


def _walk_data_roots(node: Any) -> Iterator[str]:
    """Every string ``data_root`` value in nested dicts / lists."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == 'data_root' and isinstance(value, str):
                yield value
            else:
                yield from _walk_data_roots(value)
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _walk_data_roots(item)


def training_data_roots(cfg: Any) -> List[str]:
    """The ``data_root`` values inside a config's ``train_dataloader``.

    Args:
        cfg (Config | dict): the config.

    Returns:
        list[str]: in the order they appear (empty without any).
    """
    return list(_walk_data_roots(cfg.get('train_dataloader') or {}))


def training_data_roots_of_text(text: str) -> List[str]:
    """As :func:`training_data_roots`, from a config's text (its
    ``pretty_text``, as mmengine saves it in a checkpoint), by parsing it:
    the text is not executed.

    Args:
        text (str): Python config text.

    Returns:
        list[str]: the string ``data_root`` values of the
        ``train_dataloader = ...`` assignment (empty if the text does not
        parse or has none).
    """
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    roots = []
    for stmt in tree.body:
        if not (isinstance(stmt, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == 'train_dataloader'
                for t in stmt.targets)):
            continue
        for node in ast.walk(stmt.value):
            pairs = []
            if isinstance(node, ast.Call):
                pairs = [(k.arg, k.value) for k in node.keywords]
            elif isinstance(node, ast.Dict):
                pairs = [(k.value if isinstance(k, ast.Constant) else None, v)
                         for k, v in zip(node.keys, node.values)]
            roots.extend(v.value for k, v in pairs if k == 'data_root'
                         and isinstance(v, ast.Constant)
                         and isinstance(v.value, str))
    return roots


def _has_demo_marker(folder: str, names) -> bool:
    for name in names:
        path = osp.join(folder, name)
        if not osp.isfile(path):
            continue
        try:
            with open(path, encoding='utf-8') as f:
                generator = json.load(f).get('generator')
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(generator, str) and generator.startswith(
                DEMO_GENERATOR):
            return True
    return False


def is_demo_data_root(root: str) -> bool:
    """Whether a data root is one of the synthetic demo sets (module doc).

    Args:
        root (str): the ``data_root`` of a dataset config.

    Returns:
        bool: a folder of the path is in :data:`DEMO_DATA_FOLDERS`, or the
        folder (when it exists here) holds a demo generator's marker file.
    """
    if not root:
        return False
    if any(part in DEMO_DATA_FOLDERS for part in PurePath(root).parts):
        return True
    folder = osp.normpath(root)
    if not osp.isdir(folder):
        return False
    return any(
        _has_demo_marker(where, names)
        for where, names in zip((folder, osp.dirname(osp.abspath(folder))),
                                _MARKERS))


def demo_training_data_root(cfg: Any,
                            checkpoint_meta: Optional[Mapping] = None
                            ) -> Optional[str]:
    """The demo data root a model was trained on, if any (module doc).

    Args:
        cfg (Config | dict): the config given to the tool.
        checkpoint_meta (Mapping, optional): the checkpoint's ``meta``; its
            ``cfg`` text, when present, is the config the weights were
            trained with and decides alone.

    Returns:
        str | None: the first training data root that is a demo set.
    """
    text = (checkpoint_meta or {}).get('cfg')
    if isinstance(text, str) and text.strip():
        roots = training_data_roots_of_text(text)
    else:
        roots = training_data_roots(cfg)
    return next((r for r in roots if is_demo_data_root(r)), None)


def demo_model_warning(cfg: Any,
                       checkpoint_meta: Optional[Mapping] = None
                       ) -> Optional[str]:
    """:data:`DEMO_MODEL_WARNING` for a model trained on the demo data.

    Args:
        cfg (Config | dict): the config given to the tool.
        checkpoint_meta (Mapping, optional): the checkpoint's ``meta``.

    Returns:
        str | None: the warning, or None for any other model.
    """
    if demo_training_data_root(cfg, checkpoint_meta) is None:
        return None
    return DEMO_MODEL_WARNING
