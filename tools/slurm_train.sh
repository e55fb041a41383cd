#!/usr/bin/env bash
# Training on a Slurm cluster (mmengine's 'slurm' launcher); mmdet's interface.
# Usage: [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#   bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options...]
# GPUS: tasks (processes) in all, one per GPU. GPUS_PER_NODE: tasks and GPUs
# per node (default: GPUS, at most 8). GPUS_PER_NODE=0: a partition without
# GPUs: GPUS CPU tasks, gloo backend (TASKS_PER_NODE then caps the tasks per
# node). CPUS_PER_TASK: CPUs and torch threads (OMP_NUM_THREADS unless set)
# of each task. SRUN_ARGS: more srun options (split on spaces). The
# rendezvous port is MASTER_PORT if set, else one derived from the job id.
# A task that fails or is killed ends the job (srun --kill-on-bad-exit=1;
# srun's "task N" is rank N); a frozen task ends it after
# MMLESION_DIST_TIMEOUT seconds (default 1800) plus Slurm's grace period
# KillWait (30 s by default) at most. See docs/cluster.md.
set -euo pipefail
NAME=$(basename "$0")
if [ $# -lt 4 ]; then
  echo "usage: [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...]" \
    "bash $0 PARTITION JOB_NAME CONFIG WORK_DIR [train.py options...]" >&2
  exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4

GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-default}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
TASKS_PER_NODE=${TASKS_PER_NODE:-}
SRUN_ARGS=${SRUN_ARGS:-""}
for var in GPUS GPUS_PER_NODE CPUS_PER_TASK TASKS_PER_NODE; do
  value=${!var}
  if [ -n "$value" ] && [ "$value" != default ] \
      && ! [[ "$value" =~ ^[0-9]+$ ]]; then
    echo "$NAME: $var=$value is not a whole number" >&2
    exit 2
  fi
done
if [ "$GPUS_PER_NODE" = default ]; then
  GPUS_PER_NODE=$(( GPUS < 8 ? GPUS : 8 ))
fi
if [ "$GPUS" -lt 1 ] || [ "$CPUS_PER_TASK" -lt 1 ]; then
  echo "$NAME: GPUS (the number of tasks) and CPUS_PER_TASK must be >= 1" >&2
  exit 2
fi
if ! command -v srun >/dev/null 2>&1; then
  echo "$NAME: srun not found: run this where Slurm's commands are" \
    "(one machine without Slurm: tools/dist_train.sh, tools/dist_test.sh)" >&2
  exit 127
fi
# A request the partition can never satisfy waits in the queue forever
# (Slurm accepts it unless EnforcePartLimits is set), e.g. mmdet's
# CPUS_PER_TASK=5 on nodes of fewer cores: refuse it here (sinfo's CPUs).
if NODE_CPUS=$(sinfo -h -N -p "$PARTITION" -o '%n %c' 2>/dev/null) \
    && [ -n "$NODE_CPUS" ]; then
  read -r MAX_CPUS TOTAL_CPUS < <(echo "$NODE_CPUS" | sort -u | awk \
    '$2 ~ /^[0-9]+$/ {t += $2; if ($2 > m) m = $2} END {print m + 0, t + 0}')
  PER_NODE=$GPUS_PER_NODE
  if [ "$PER_NODE" -eq 0 ]; then PER_NODE=${TASKS_PER_NODE:-1}; fi
  if [ "$PER_NODE" -gt "$GPUS" ]; then PER_NODE=$GPUS; fi
  if [ "$MAX_CPUS" -gt 0 ] && {
      [ $(( PER_NODE * CPUS_PER_TASK )) -gt "$MAX_CPUS" ] ||
      [ $(( GPUS * CPUS_PER_TASK )) -gt "$TOTAL_CPUS" ]; }; then
    echo "$NAME: GPUS=$GPUS tasks x CPUS_PER_TASK=$CPUS_PER_TASK CPUs" \
      "($PER_NODE tasks per node) do not fit partition '$PARTITION':" \
      "$TOTAL_CPUS CPUs, at most $MAX_CPUS per node (sinfo); Slurm would" \
      "keep the job waiting. Lower CPUS_PER_TASK or GPUS." >&2
    exit 2
  fi
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

SRUN_OPTS=(-p "$PARTITION" --job-name="$JOB_NAME" --ntasks="$GPUS"
           --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1)
if [ "$GPUS_PER_NODE" -gt 0 ]; then
  SRUN_OPTS+=(--gres=gpu:"$GPUS_PER_NODE" --ntasks-per-node="$GPUS_PER_NODE")
elif [ -n "$TASKS_PER_NODE" ]; then
  SRUN_OPTS+=(--ntasks-per-node="$TASKS_PER_NODE")
fi
# One torch thread per CPU of the task (tasks often see all the node's
# cores); srun passes this environment on to the tasks.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$CPUS_PER_TASK}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# SRUN_ARGS: several srun options, split on white space (no globbing)
read -r -a SRUN_EXTRA <<< "$SRUN_ARGS"
CMD=(srun "${SRUN_OPTS[@]}" ${SRUN_EXTRA[@]+"${SRUN_EXTRA[@]}"} python -u "$ROOT/tools/train.py"
     "$CONFIG" --work-dir="$WORK_DIR" --launcher=slurm "${@:5}")
echo "+ ${CMD[*]}" >&2
set +e
"${CMD[@]}"
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
  echo "$NAME: the job '$JOB_NAME' failed (srun exit status $rc). In srun's" \
    "lines above, 'task N' is rank N; each rank's own error is above too" \
    "(a rank that lost its peer names it)." >&2
fi
exit "$rc"
