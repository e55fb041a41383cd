# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS's options of a whole-scan run (``tools/infer_volume.py``): the flags
it adds to the tool's parser and the typed settings read back from them.

The flags are data, ``flags.json`` beside this file: the tool reads it for
its ``--help`` without importing mmlesion
(:func:`mmlesion_cli.add_method_arguments`); the run reads the options
through :class:`LensScanSettings` (a flag renamed here
and not there fails, naming the option, instead of turning LENS off).
"""
import argparse
import json
import os.path as osp
from dataclasses import dataclass
from typing import Optional, Tuple


@dataclass(frozen=True)
class LensScanSettings:
    """What a whole-scan run's options ask of LENS.

    Args:
        experts (tuple[int], optional): ``--experts``: the experts
            (datasets) to fuse (None: the config's
            ``test_cfg.expert_fusion.experts``).
        fpr_config (str, optional): ``--fpr-config``: the 3D FPR network's
            config (Eq. 2's re-scoring; None: no re-scoring).
        fpr_checkpoint (str, optional): ``--fpr-checkpoint``: its weights.
    """
    experts: Optional[Tuple[int, ...]] = None
    fpr_config: Optional[str] = None
    fpr_checkpoint: Optional[str] = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> 'LensScanSettings':
        """The settings of parsed options that
        :func:`add_whole_scan_arguments` added.

        Raises:
            AttributeError: an option it reads is not in ``args``.
        """
        return cls(
            experts=None if args.experts is None else tuple(args.experts),
            fpr_config=args.fpr_config, fpr_checkpoint=args.fpr_checkpoint)


def add_whole_scan_arguments(parser: argparse.ArgumentParser) -> None:
    """Add LENS's whole-scan options (``flags.json`` beside this file, the
    one list the tools' ``--help`` reads too) to a tool's parser."""
    with open(osp.join(osp.dirname(__file__), 'flags.json')) as f:
        spec = json.load(f)['whole_scan']
    group = parser.add_argument_group(spec['group'])
    for option in spec['options']:
        kwargs = {k: v for k, v in option.items() if k != 'flags'}
        if 'type' in kwargs:
            kwargs['type'] = {'int': int, 'float': float}[kwargs['type']]
        group.add_argument(*option['flags'], **kwargs)
