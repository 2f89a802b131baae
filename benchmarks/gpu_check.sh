#!/usr/bin/env bash
# GPU check of mmseg_fusion (issue 23): the model and functional tests on the device, every
# synthetic config trained with AMP through tools/train.py, criss-cross attention ours vs
# mmcv, SSR over 5 scales vs mmseg's SegTTAModel; one markdown table at the end.
#   bash benchmarks/gpu_check.sh                          # one CUDA GPU (sized for < 8 min)
#   bash benchmarks/gpu_check.sh --device cpu             # CPU smoke run (~130 s of CPU time)
#   bash benchmarks/gpu_check.sh --out gpu_check.md       # also write the table to a file
# More options: python benchmarks/gpu_check.py --help.
# Python: $MMSEG_FUSION_PYTHON, else the active virtual environment, else ./.venv (set up by
# `make setup`), else python3 on the PATH; nothing is installed here.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -n "${MMSEG_FUSION_PYTHON:-}" ]]; then
    PY="$MMSEG_FUSION_PYTHON"
elif [[ -n "${VIRTUAL_ENV:-}" && -x "${VIRTUAL_ENV}/bin/python" ]]; then
    PY="${VIRTUAL_ENV}/bin/python"
elif [[ -x "$ROOT/.venv/bin/python" ]]; then
    PY="$ROOT/.venv/bin/python"
else
    PY="$(command -v python3 || command -v python)"
fi
export PYTHONUNBUFFERED=1 MMSEG_FUSION_SKIP_VERSION_CHECK=1
exec "$PY" -u benchmarks/gpu_check.py "$@"
