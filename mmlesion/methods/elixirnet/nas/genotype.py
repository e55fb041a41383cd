# Copyright (c) mmlesion contributors. All rights reserved.
"""Derive, write and read ALB genotypes as config snippets.

ElixirNet, "Differentiable Search Strategy": "At the end of search, a
discrete architecture is obtained by replacing each mixed operation with the
most likely operation by argmax". The derivation itself is the cells'
(:meth:`ALBCell.genotype`, called through :meth:`ALBBBoxHead.genotypes`);
this module finds the searched head in a detector and turns its genotypes into
a config snippet, a ``.py`` file holding ``genotypes = dict(normal=...,
reduce=...)``. Use a snippet in a config (here one in configs/elixirnet/)
either by inheriting it::

    _base_ = ['./elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py',
              '/path/to/search/work_dir/genotype.py']
    model = dict(roi_head=dict(bbox_head=dict(
        genotypes={{_base_.genotypes}})))

or in Python with :func:`apply_genotypes` (what ``tools/search_alb.py``
prints).
"""
import ast
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.model import is_model_wrapper

from mmlesion.utils.writing.atomic import atomic_write_text

from ..models.alb_cell import Genotypes, normalize_genotype
from ..models.alb_ops import ALB_OP_NAMES, DARTS_OP_NAMES

GENOTYPE_KEYS = ('normal', 'reduce')


def find_search_heads(model: nn.Module) -> Dict[str, nn.Module]:
    """Return the searchable ALB heads of a model (modules with
    ``search=True`` and a ``genotypes()`` method), by module name.

    Args:
        model (nn.Module): a detector (a model wrapper is unwrapped).

    Returns:
        dict[str, nn.Module]: name -> head, in module order.
    """
    if is_model_wrapper(model):
        model = model.module
    return {
        name: module
        for name, module in model.named_modules()
        if getattr(module, 'search', False) is True
        and callable(getattr(module, 'genotypes', None))
    }


def the_search_head(model: nn.Module, who: str) -> nn.Module:
    """The one searchable ALB head of ``model`` (``who``: the caller)."""
    heads = find_search_heads(model)
    if len(heads) != 1:
        raise ValueError(
            f'{who} needs exactly one ALB head built with '
            f'search=True, found {len(heads)}: {sorted(heads)}')
    return next(iter(heads.values()))


def derive_genotypes(model: nn.Module) -> Genotypes:
    """Derive the discrete genotypes of the searched ALB head of a model.

    Args:
        model (nn.Module): a detector with exactly one ALB head built with
            ``search=True`` (or such a head itself).

    Returns:
        dict: ``dict(normal=dict(ops=[(op, input), ...], concat=[...]),
        reduce=dict(...))``, the argmax of the current architecture
        parameters (the DARTS rule of :meth:`ALBCell.genotype`).

    Raises:
        ValueError: if the model has no, or several, searchable heads.
    """
    head = the_search_head(model, 'derive_genotypes')
    return check_genotypes(head.genotypes(),
                           op_names=head.op_names,
                           num_branches=head.num_branches)


def check_genotypes(genotypes: dict,
                    op_names=ALB_OP_NAMES,
                    num_branches: Optional[int] = None,
                    source: str = 'genotypes') -> Genotypes:
    """Validate ``dict(normal=..., reduce=...)`` and return plain python.

    Args:
        genotypes (dict): the two cell genotypes.
        op_names (Sequence[str]): allowed operations.
        num_branches (int, optional): B; None infers it from the number of
            ``ops`` of each cell (two per branch).
        source (str): where the genotypes come from, for error messages.

    Returns:
        dict: normalised genotypes (``ops`` as lists of ``(str, int)``
        tuples, ``concat`` as a list of ints).
    """
    if isinstance(genotypes, ConfigDict):
        genotypes = genotypes.to_dict()
    if not isinstance(genotypes, dict) or set(genotypes) != set(GENOTYPE_KEYS):
        raise ValueError(
            f'{source}: expected dict(normal=..., reduce=...), got '
            f'{genotypes!r}')
    out = {}
    for key in GENOTYPE_KEYS:
        cell = genotypes[key]
        if not isinstance(cell, dict) or 'ops' not in cell:
            raise ValueError(f"{source}[{key!r}] must be a dict with an "
                             f"'ops' list, got {cell!r}")
        branches = num_branches or max(len(cell['ops']) // 2, 1)
        out[key] = normalize_genotype(dict(cell), branches, op_names,
                                      f'{source}[{key!r}]')
    return out


def format_genotypes(genotypes: dict) -> str:
    """Return the genotypes as the python text of a config snippet.

    One line per branch (its two ``(operation, input_index)`` pairs), in the
    layout of mmlesion's configs; the text evaluates back to ``genotypes``.
    """
    lines = ['genotypes = dict(']
    for i, key in enumerate(GENOTYPE_KEYS):
        cell = genotypes[key]
        ops = [tuple(op) for op in cell['ops']]
        lines.append(f'    {key}=dict(')
        lines.append('        ops=[')
        for b in range(0, len(ops), 2):
            pair = ', '.join(repr(op) for op in ops[b:b + 2])
            lines.append(f'            {pair},  # branch {b // 2 + 1}')
        lines.append('        ],')
        end = '),' if i < len(GENOTYPE_KEYS) - 1 else '))'
        lines.append(f'        concat={list(cell["concat"])!r}{end}')
    return '\n'.join(lines) + '\n'


def dump_genotypes(genotypes: dict,
                   path: str,
                   comment: Optional[str] = None,
                   op_names: Sequence[str] = ALB_OP_NAMES) -> str:
    """Write ``genotypes = {...}`` as a config snippet.

    Args:
        genotypes (dict): ``dict(normal=..., reduce=...)``.
        path (str): target ``.py`` file; its folder is created.
        comment (str, optional): a header comment (one or more lines).
        op_names (Sequence[str]): the search space the genotypes come from
            (checked against it); another than :data:`ALB_OP_NAMES` (e.g.
            ``DARTS_OP_NAMES``) is written as ``op_names = [...]`` too.

    Returns:
        str: the path written.
    """
    if not path.endswith('.py'):
        raise ValueError(f'A genotype snippet must be a .py file, got {path}')
    op_names = tuple(op_names)
    genotypes = check_genotypes(genotypes, op_names=op_names, source=path)
    own_space = op_names == ALB_OP_NAMES
    lines: List[str] = []
    if comment:
        lines += [f'# {line}'.rstrip() for line in comment.splitlines()]
    lines += [
        '# Use it: _base_ = [<elixirnet config>, <this file>] and',
        "# model = dict(roi_head=dict(bbox_head=dict("
        'genotypes={{_base_.genotypes}}' +
        ('' if own_space else ', op_names={{_base_.op_names}}') + ')))',
        '# or mmlesion.methods.elixirnet.nas.apply_genotypes(cfg, <this file>).',
    ]
    text = '\n'.join(lines) + '\n' + format_genotypes(genotypes)
    if not own_space:
        text += f'op_names = {list(op_names)!r}\n'
    ast.parse(text)  # a snippet that does not parse must never be written
    atomic_write_text(path, text)
    return path


def load_genotypes(path: str,
                   op_names: Optional[Sequence[str]] = None
                   ) -> Genotypes:
    """Read the ``genotypes`` of a config snippet (or of any config).

    Args:
        path (str): a ``.py`` config holding ``genotypes = dict(...)``.
        op_names (Sequence[str], optional): allowed operations; None takes
            the snippet's ``op_names`` (:func:`load_op_names`).

    Returns:
        dict: the validated genotypes.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if it has no valid ``genotypes``.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Genotype snippet not found: {path}')
    cfg = Config.fromfile(path)
    if 'genotypes' not in cfg:
        raise ValueError(f'{path}: no `genotypes = dict(...)` in the file')
    if op_names is None:
        op_names = cfg.get('op_names', ALB_OP_NAMES)
    return check_genotypes(cfg.genotypes,
                           op_names=tuple(op_names),
                           source=f'{path}: genotypes')


def load_op_names(path: str) -> Tuple[str, ...]:
    """The search space of a genotype snippet: its ``op_names``, or the
    paper's :data:`ALB_OP_NAMES` when it has none."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'Genotype snippet not found: {path}')
    return tuple(Config.fromfile(path).get('op_names', ALB_OP_NAMES))


def search_space_tag(op_names: Sequence[str]) -> Optional[str]:
    """Config-name tag of a search space: None for the paper's
    (:data:`ALB_OP_NAMES`), ``'dartsspace'`` for :data:`DARTS_OP_NAMES`
    (Table 6 "ALB w/o our search space"), ``'customspace'`` otherwise."""
    op_names = tuple(op_names)
    if op_names == ALB_OP_NAMES:
        return None
    if op_names == DARTS_OP_NAMES:
        return 'dartsspace'
    return 'customspace'


def apply_genotypes(cfg: Config,
                    genotypes,
                    head_path: str = 'model.roi_head.bbox_head',
                    op_names: Optional[Sequence[str]] = None) -> Config:
    """Put searched genotypes into a detector config (in place).

    Sets ``genotypes`` of the box head and turns ``search`` off; sets its
    ``op_names`` too when the genotypes come from another search space than
    the head's (e.g. ``DARTS_OP_NAMES``).

    Args:
        cfg (Config): a config with an ALB box head.
        genotypes (dict | str): the genotypes, or the path of a snippet.
        head_path (str): dotted path of the box head config.
        op_names (Sequence[str], optional): the genotypes' search space;
            None: the snippet's (a path) or the head's (a dict).

    Returns:
        Config: ``cfg``.
    """
    node = cfg
    for key in head_path.split('.'):
        if key not in node:
            raise KeyError(f'Config has no `{head_path}` (missing {key!r})')
        node = node[key]
    head_ops = tuple(node.get('op_names', None) or ALB_OP_NAMES)
    if isinstance(genotypes, str):
        if op_names is None:
            op_names = load_op_names(genotypes)
        genotypes = load_genotypes(genotypes, op_names=op_names)
    else:
        genotypes = check_genotypes(genotypes,
                                    op_names=tuple(op_names or head_ops))
    node['genotypes'] = genotypes
    node['search'] = False
    if op_names is not None and tuple(op_names) != head_ops:
        node['op_names'] = list(op_names)
    return cfg


#: Config-name tag of the configs that use the paper's Fig. 3 genotype.
PAPER_FIGURE_TAG = 'fig3geno'


def searched_config_name(target_config: str,
                         tags: Sequence[str] = ()) -> str:
    """File name of the ready config for a target ElixirNet config.

    ``elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py`` ->
    ``elixirnet-searched_r50_fpn_4xb2-1x_deeplesion-3slice.py``: the
    algorithm field gets ``-searched`` in place of the ``-fig3geno`` tag (the
    paper's Fig. 3 genotype).

    Args:
        target_config (str): the ElixirNet config the genotype goes into.
        tags (Sequence[str]): what sets the search apart from the paper's
            (Table 6): e.g. ``('dartsspace', )`` ->
            ``elixirnet-searched-dartsspace_...``, ``('random', )`` ->
            ``elixirnet-searched-random_...``.
    """
    stem = osp.splitext(osp.basename(target_config))[0]
    algo, _, rest = stem.partition('_')
    algo = algo.replace(f'-{PAPER_FIGURE_TAG}', '')
    algo = '-'.join([algo, 'searched', *[t for t in tags if t]])
    return f'{algo}_{rest}.py' if rest else f'{algo}.py'


def write_searched_config(genotypes: dict,
                          target_config: str,
                          out_path: str,
                          provenance: Optional[str] = None,
                          op_names: Optional[Sequence[str]] = None) -> str:
    """Write a config that inherits ``target_config`` with ``genotypes``.

    The written file is an ordinary config (``tools/train.py`` trains it):
    ``_base_`` is the target config (relative to the written file), the box
    head's ``genotypes`` replaced (``_delete_=True``), ``search=False``.

    Args:
        genotypes (dict): ``dict(normal=..., reduce=...)``.
        target_config (str): the ElixirNet config to inherit (with an ALB
            ``model.roi_head.bbox_head``).
        out_path (str): the ``.py`` file to write (overwritten).
        provenance (str, optional): header comment lines.
        op_names (Sequence[str], optional): the search space of the
            genotypes (they are checked against it); when it differs from
            the target head's (e.g. ``DARTS_OP_NAMES``) the written config
            sets the head's ``op_names`` too. None: the target head's.

    Returns:
        str: ``out_path``.

    Raises:
        FileNotFoundError: if ``target_config`` does not exist.
        ValueError: if the target has no ALB box head, or the written
            config does not read back with the same genotypes.
    """
    if not out_path.endswith('.py'):
        raise ValueError(f'The searched config must be a .py file: '
                         f'{out_path}')
    if not osp.isfile(target_config):
        raise FileNotFoundError(f'Target config not found: {target_config}')
    head = Config.fromfile(target_config).get('model', {}).get(
        'roi_head', {}).get('bbox_head', {})
    if not isinstance(head, dict) or 'genotypes' not in head:
        raise ValueError(
            f'{target_config}: model.roi_head.bbox_head has no `genotypes` '
            '(not an ALBBBoxHead / RTMBBoxHead config)')
    head_ops = tuple(head.get('op_names', None) or ALB_OP_NAMES)
    op_names = head_ops if op_names is None else tuple(op_names)
    genotypes = check_genotypes(genotypes, op_names=op_names, source=out_path)
    base = osp.relpath(
        osp.abspath(target_config), osp.dirname(osp.abspath(out_path)))
    body = format_genotypes(genotypes).splitlines()[1:]  # drop 'genotypes ='
    lines = [f'# {line}'.rstrip() for line in (provenance or '').splitlines()]
    lines += [
        '# Written by tools/search_alb.py (mmlesion.methods.elixirnet.nas.'
        'write_searched_config): the',
        '# target config with the searched Auto-lesion Block genotypes.',
        f'_base_ = [{base!r}]',
        '',
        'model = dict(',
        '    roi_head=dict(',
        '        bbox_head=dict(',
        '            search=False,',
    ]
    if op_names != head_ops:
        lines.append(f'            op_names={list(op_names)!r},')
    lines += [
        '            genotypes=dict(',
        '                _delete_=True,',
    ]
    lines += ['            ' + line for line in body]
    lines[-1] += ')))'
    text = '\n'.join(lines) + '\n'
    ast.parse(text)
    atomic_write_text(out_path, text)
    written_head = Config.fromfile(out_path).model.roi_head.bbox_head
    written = check_genotypes(
        written_head.genotypes,
        op_names=tuple(written_head.get('op_names', None) or ALB_OP_NAMES),
        source=out_path)
    if written != genotypes:
        raise ValueError(f'{out_path}: the written config does not read '
                         'back with the searched genotypes')
    return out_path
