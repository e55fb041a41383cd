#!/usr/bin/env bash
# Distributed training over torch.distributed (mmengine's 'pytorch' launcher).
# Usage: bash tools/dist_train.sh CONFIG NPROC [train.py options...]
# Several nodes: NNODES=2 NODE_RANK=0 MASTER_ADDR=host PORT=29500 ...
# CPU-only machines use the gloo backend: --cfg-options env_cfg.dist_cfg.backend=gloo
# Faults: `exec` makes this script the torchrun launcher, and tools/train.py
# asks Linux to end each worker when the launcher dies (PR_SET_PDEATHSIG);
# a rank stuck in a collective ends the job after MMLESION_DIST_TIMEOUT
# seconds (default 1800; or --cfg-options env_cfg.dist_cfg.timeout=600)
# plus torchrun's grace period of 30 s (it kills a frozen rank, which
# ignores its SIGTERM, 30 s later).
set -e
CONFIG=$1
NPROC=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
exec python -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" \
    --master_port="$PORT" \
    "$(dirname "$0")/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
