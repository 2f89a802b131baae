#!/usr/bin/env bash
# Distributed testing on one or several nodes with torchrun (CUDA: NCCL; CPU: gloo).
#   bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py options...]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR and PORT as in mmseg's script.
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
HERE="$(cd "$(dirname "$0")" && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
    PYTHON=python
    [[ -z "${VIRTUAL_ENV:-}" && -x "$HERE/../.venv/bin/python" ]] && PYTHON="$HERE/../.venv/bin/python"
fi
PYTHONPATH="$HERE/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" --master_port="$PORT" \
    "$HERE/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
