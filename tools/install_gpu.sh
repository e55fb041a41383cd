#!/usr/bin/env bash
# Install mmlesion with mmcv 2.1.0's CUDA ops on a machine with CUDA.
#
# First install the torch build for your CUDA into the active environment
# (see pytorch.org), then, from the repository root:
#
#     bash tools/install_gpu.sh
#
# PyPI has no mmcv 2.x wheel: mmcv 2.1.0 is built from its source release,
# and that release includes THC/THCAtomics.cuh, which current torch no longer
# ships (a plain `pip install mmcv==2.1.0` stops at a compiler error). The
# script rewrites that include (tools/misc/patch_mmcv_cuda.py), builds with
# FORCE_CUDA=1 for your GPU's architecture, installs the rest of the stack
# and mmlesion, and checks mmcv's nms and RoIAlign on the GPU.
# Settings (environment): TORCH_CUDA_ARCH_LIST (default: this GPU's, e.g.
# "9.0"; a list such as "8.0;9.0" builds for several), MAX_JOBS (default:
# the number of cores), MMCV_SRC (an unpacked mmcv-2.1.0 source to use
# instead of downloading it). Offline (a wheel folder): PIP_NO_INDEX=1
# PIP_FIND_LINKS=DIR PIP_NO_DEPS=1 MMCV_SRC=... bash tools/install_gpu.sh.
# Measured: 4-5 min on 16 cores (H100).
set -euo pipefail
cd "$(dirname "$0")/.."

python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
  echo "error: torch has no CUDA device here; install the CUDA build of torch first" \
       "(the CPU install is in README.md)" >&2
  exit 1
}
python -m pip install -q "setuptools>=77.0.3,<81" wheel
ARCH=${TORCH_CUDA_ARCH_LIST:-$(python -c 'import torch; m, n = torch.cuda.get_device_capability(); print(f"{m}.{n}")')}
JOBS=${MAX_JOBS:-$(nproc)}
echo "torch $(python -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)'), arch $ARCH, $JOBS jobs"

if python -c "import mmcv.ops, torch; from mmcv.ops import nms; nms(torch.rand(4, 4, device='cuda'), torch.rand(4, device='cuda'), 0.5)" 2>/dev/null; then
  echo "mmcv with CUDA ops is already installed"
else
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
  SRC=${MMCV_SRC:-}
  if [ -z "$SRC" ]; then
    python -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d "$WORK" mmcv==2.1.0
    tar xzf "$WORK"/mmcv-2.1.0.tar.gz -C "$WORK"
    SRC="$WORK/mmcv-2.1.0"
  fi
  python tools/misc/patch_mmcv_cuda.py "$SRC"
  echo "building mmcv 2.1.0 with CUDA ops (log: $WORK/build.log) ..."
  (cd "$SRC" && MMCV_WITH_OPS=1 FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$ARCH" MAX_JOBS="$JOBS" \
     python -m pip install --no-build-isolation --no-deps . ) > "$WORK/build.log" 2>&1 \
     || { tail -40 "$WORK/build.log"; echo "error: the mmcv build failed" >&2; exit 1; }
fi
# requirements/gpu.txt, not runtime.txt: keep this environment's CUDA torch, numpy and OpenCV
python -m pip install -q --no-build-isolation -r requirements/gpu.txt
python -c "import cv2" 2>/dev/null || python -m pip install -q opencv-python-headless
python -m pip install -q --no-build-isolation --no-deps -e .
python - <<'PY'
import torch
from mmcv.ops import RoIAlign, nms
boxes = torch.rand(100, 4, device='cuda') * 100
boxes[:, 2:] += boxes[:, :2]
nms(boxes, torch.rand(100, device='cuda'), 0.5)
RoIAlign((7, 7), 1.0, 0)(torch.rand(1, 8, 32, 32, device='cuda'),
                         torch.tensor([[0., 1, 1, 20, 20]], device='cuda'))
import mmcv, mmdet, mmlesion
print('ok: mmcv', mmcv.__version__, 'CUDA ops on', torch.cuda.get_device_name(0),
      '| mmdet', mmdet.__version__, '| mmlesion', mmlesion.__version__)
PY
