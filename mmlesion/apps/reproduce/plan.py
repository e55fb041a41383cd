# Copyright (c) mmlesion contributors. All rights reserved.
"""What ``tools/reproduce.py`` runs: a paper table as rows of stages.

A *stage* is one command of the documented path (a pre-step such as the
anchor search, a training, a test, an evaluation), run as a subprocess in
the table's work dir; a *row* is the paper row it produces, with the
metric file its last stage writes and the model whose published
numbers (the paper's) it is compared with. Rows run once per seed; LUNA16
rows run their folds inside ``tools/luna16_cv.py``.
"""
import argparse
import os
import os.path as osp
import shlex
from dataclasses import dataclass, field
from functools import lru_cache
from typing import (Any, Callable, Dict, Iterator, List, Mapping, Optional,
                    Sequence, Tuple, Union)

#: paper key -> (key in our metric file, factor to the paper's unit)
MetricMap = Dict[str, Tuple[str, float]]
#: A value of ``--cfg-options`` as mmengine's ``DictAction`` reads it.
OptionValue = Union[None, bool, int, float, str, list, tuple]


class LazyMapping(Mapping):
    """A mapping that ``make()`` computes on every use, for views of the
    registered methods (a method registered later is in it too).

    Args:
        make (callable): () -> the mapping's current content.
    """

    def __init__(self, make: Callable[[], Mapping]) -> None:
        self.make = make

    def __getitem__(self, key: Any) -> Any:
        return self.make()[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.make())

    def __len__(self) -> int:
        return len(self.make())


@dataclass
class Stage:
    """One command of a row.

    Args:
        name (str): unique within the row (``train``, ``anchors``, ...).
        argv (list[str]): the command, relative to the repository root.
        outputs (list[str]): files that exist when the stage is done.
        gpu_hours (float): estimated GPU-hours of the stage (0: CPU only).
        gpus (int): GPUs the command uses.
    """
    name: str
    argv: List[str]
    outputs: List[str] = field(default_factory=list)
    gpu_hours: float = 0.0
    gpus: int = 0

    @property
    def command(self) -> str:
        """The stage as one shell line."""
        return shlex.join(self.argv)


@dataclass
class Row:
    """One row of a paper table for one seed.

    Args:
        key (str): short name (``--rows``).
        label (str): the paper's row name.
        model (str): the model (config stem) whose paper numbers it is compared with.
        stages (list[Stage]): in order.
        metrics_file (str): the JSON its last stage writes.
        metric_map (dict): paper key -> (our key, factor).
        seed (int): training seed.
        paper_key (str, optional): the entry of the paper's numbers when
            it is not ``model``'s (the same model under another criterion:
            ``<model>@iobb``: the same model under an IoBB criterion).
    """
    key: str
    label: str
    model: str
    stages: List[Stage]
    metrics_file: str
    metric_map: MetricMap
    seed: int = 0
    paper_key: Optional[str] = None

    @property
    def paper_name(self) -> str:
        """The key of the row's numbers in ``PAPER_RESULTS``: ``paper_key``,
        else for a variant with the paper's reading as a model of its own
        that model's (:data:`.paper_results.VARIANTS`), else ``model``."""
        from .variants import VARIANTS
        variant = VARIANTS.get(self.model)
        return (self.paper_key or (variant and variant.paper_reading)
                or self.model)

    @property
    def gpu_hours(self) -> float:
        return sum(s.gpu_hours for s in self.stages)


@dataclass
class PlanContext:
    """The options every row is built with.

    Args:
        work_dir (str): the table's folder (one sub-folder per row and
            seed).
        data_root (str, optional): the dataset root the configs read
            (default: the configs' own).
        gpus (int): GPUs per training (mmengine's pytorch launcher when
            > 1).
        folds (list[int], optional): LUNA16 folds (default: all ten).
        cfg_options (list[str]): extra ``key=value`` options appended to
            every training and test (e.g. to shrink a rehearsal).
        search_cfg_options (list[str]): ``key=value`` options appended
            after ``cfg_options`` to every architecture search only
            (``tools/search_alb.py``), for the keys
            only a search config has (``train_cfg.num_candidates`` of the
            random search).
        config_cfg_options (dict[str, list[str]]): options in place of
            ``cfg_options`` for the stages of every config whose file name
            contains the key (the first key that matches), for models
            that other options do not fit (e.g. a 3D network beside 2D
            detectors).
        python (str): the interpreter.
        cuda (bool): the stages run where CUDA is (inference stages take
            ``--device cuda:0`` when ``gpus`` > 0); False on a machine
            without a GPU, where they take ``cpu``.
    """
    work_dir: str
    data_root: Optional[str] = None
    gpus: int = 1
    folds: Optional[List[int]] = None
    cfg_options: List[str] = field(default_factory=list)
    search_cfg_options: List[str] = field(default_factory=list)
    config_cfg_options: Dict[str, List[str]] = field(default_factory=dict)
    python: str = 'python'
    cuda: bool = True

    def launcher(self, script: str) -> List[str]:
        """The command prefix of a training or test script."""
        if self.gpus > 1:
            return [self.python, '-m', 'torch.distributed.run',
                    f'--nproc_per_node={self.gpus}', script,
                    '--launcher', 'pytorch']
        return [self.python, script]

    def user_options(self, config: str) -> List[str]:
        """The user's options of the stages of ``config``: the first of
        :attr:`config_cfg_options` whose key is in its file name, else
        :attr:`cfg_options`."""
        name = osp.basename(config)
        return next((list(o) for key, o in self.config_cfg_options.items()
                     if key in name), list(self.cfg_options))

    def options(self, config: str, *extra: str) -> List[str]:
        """``--cfg-options`` of a stage of ``config``: the data root,
        ``extra`` and :meth:`user_options` (an empty list when there is
        nothing to set)."""
        opts = list(extra)
        if self.data_root:
            opts.append(f'data_root={self.data_root}')
        opts += self.user_options(config)
        return ['--cfg-options', *opts] if opts else []


def repo_root() -> str:
    """The clone the tools run from (:func:`mmlesion.utils.configs.lookup.
    repo_root`, as a string: ``MMLESION_ROOT`` or the folder above the
    package)."""
    from mmlesion.utils.configs.lookup import repo_root as clone_root
    return str(clone_root())


def parse_cfg_options(options: Sequence[str]) -> Dict[str, OptionValue]:
    """``key=value`` strings as the tools' ``--cfg-options`` read them
    (mmengine's ``DictAction``: numbers, booleans, lists, tuples).

    Raises:
        ValueError: an option without ``=``.
    """
    from mmengine.config import DictAction
    bad = [o for o in options if '=' not in o]
    if bad:
        raise ValueError(f'--cfg-options {bad}: each must be KEY=VALUE')
    if not options:
        return {}
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--o', nargs='+', action=DictAction)
    return dict(parser.parse_args(['--o', *options]).o)


@lru_cache(maxsize=None)
def _parse_config(path: str, mtime_ns: int):
    from mmengine.config import Config
    return Config.fromfile(path)


def parsed_config(config: str):
    """A config file as mmengine parses it, once per file and version in
    this process: a plan reads each config several times (its epochs, its
    data paths, its datasets), and each parse of a config with an
    ``mmdet::`` base reads all of mmdet's metafiles. Shared: read it, do not
    change it (``copy.deepcopy`` it first).

    Args:
        config (str): the config file (relative to the working folder).

    Returns:
        mmengine.config.Config: the parsed config.
    """
    path = osp.abspath(config)
    return _parse_config(path, os.stat(path).st_mtime_ns)
