#!/usr/bin/env bash
# Training on a Slurm cluster (one task per GPU, or per process on CPU nodes).
#   GPUS=16 GPUS_PER_NODE=8 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py options]
#   NO_GPU=1 GPUS=4 GPUS_PER_NODE=2 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [...]
# On CPU-only nodes set NO_GPU=1 (no --gres=gpu request), GPUS to the number of processes and
# GPUS_PER_NODE to those per node: the run uses gloo (see mmseg_fusion.engine.setup_distributed).
# Also read: CPUS_PER_TASK (default 5), SRUN_ARGS, PYTHON.
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
HERE="$(cd "$(dirname "$0")" && pwd)"
PYTHON=${PYTHON:-python}
GRES=""
[[ "${NO_GPU:-0}" == "1" ]] || GRES="--gres=gpu:${GPUS_PER_NODE}"
PYTHONPATH="$HERE/..${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" --job-name="$JOB_NAME" $GRES --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 \
    $SRUN_ARGS "$PYTHON" -u "$HERE/train.py" "$CONFIG" --launcher slurm "${@:4}"
