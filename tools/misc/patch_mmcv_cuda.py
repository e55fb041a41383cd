# Copyright (c) mmlesion contributors. All rights reserved.
"""Make mmcv 2.1.0's CUDA sources build against a current torch.

mmcv 2.1.0 includes ``THC/THCAtomics.cuh`` in two files
(``mmcv/ops/csrc/common/pytorch_cuda_helper.hpp`` and
``ms_deform_attn_cuda.cu``). torch 2.x wheels no longer ship ``include/THC``
at all; the same atomics (``atomicAdd`` for half and double) live in
``ATen/cuda/Atomic.cuh``. This rewrites that include in an unpacked mmcv
source tree and says which files it changed. Used by
``tools/install_gpu.sh``; safe to run twice.

Usage::

    python tools/misc/patch_mmcv_cuda.py path/to/mmcv-2.1.0
"""
import argparse
import os
import sys
from typing import List, Optional, Sequence

OLD = 'THC/THCAtomics.cuh'
NEW = 'ATen/cuda/Atomic.cuh'
SUFFIXES = ('.h', '.hpp', '.cuh', '.cu', '.cpp')


def patch_mmcv_sources(src_root: str) -> List[str]:
    """Replace the ``THC/THCAtomics.cuh`` include under ``src_root``.

    Args:
        src_root (str): the unpacked mmcv source (holding ``mmcv/ops``).

    Returns:
        list[str]: the files changed (empty when already patched).

    Raises:
        FileNotFoundError: ``src_root`` has no ``mmcv/ops/csrc``.
    """
    csrc = os.path.join(src_root, 'mmcv', 'ops', 'csrc')
    if not os.path.isdir(csrc):
        raise FileNotFoundError(
            f'{src_root}: no mmcv/ops/csrc folder (not an mmcv source tree)')
    changed = []
    for folder, _, files in os.walk(csrc):
        for name in sorted(files):
            if not name.endswith(SUFFIXES):
                continue
            path = os.path.join(folder, name)
            with open(path, encoding='utf-8', errors='surrogateescape') as f:
                text = f.read()
            if OLD not in text:
                continue
            tmp = path + '.patching'
            with open(tmp, 'w', encoding='utf-8',
                      errors='surrogateescape') as f:
                f.write(text.replace(OLD, NEW))
            os.replace(tmp, path)
            changed.append(path)
    return sorted(changed)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Rewrite mmcv 2.1.0's THC/THCAtomics.cuh include to "
        'ATen/cuda/Atomic.cuh so its CUDA ops build with a current torch.')
    parser.add_argument('src_root', help='the unpacked mmcv source tree')
    args = parser.parse_args(argv)
    try:
        changed = patch_mmcv_sources(args.src_root)
    except FileNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'patched {len(changed)} file(s)' +
          ''.join(f'\n  {p}' for p in changed))
    return 0


if __name__ == '__main__':
    sys.exit(main())
