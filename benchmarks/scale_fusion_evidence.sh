#!/usr/bin/env bash
# The evidence of benchmarks/README.md, 3 seeds per row, on mmseg's own pipeline:
#   data set a: the main table (equal iterations and equal training compute), the sweep of
#   training compute, the retrofits, the AFA neck rows, the inference scale sets and the
#   diagnosis of the random-resize rows; data set b (held out): the main rows.
#   bash benchmarks/scale_fusion_evidence.sh [WORK_DIR]
#     WORK_DIR default work_dirs/scale_fusion_benchmark (every run is cached there: a second
#     call trains only what is missing and rewrites the tables and plots)
# Environment: PYTHON (default: the project's environment), JOBS (parallel trainings, 2),
# SEEDS (default "0 1 2"). About 4 hours on 2 idle cores.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -z "${PYTHON:-}" ]]; then
    bash scripts/bootstrap.sh
    eval "$(bash scripts/bootstrap.sh --print-env)"
    PYTHON="$PY"
fi
export MMSEG_FUSION_SKIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
W="${1:-work_dirs/scale_fusion_benchmark}"
read -r -a seeds <<<"${SEEDS:-0 1 2}"
run() { "$PYTHON" benchmarks/scale_fusion_benchmark.py --seeds "${seeds[@]}" \
            --jobs "${JOBS:-2}" --out "$W" "$@"; }
run --data a --group main sweep retrofit afa diagnosis --scale-sets
run --data b --group heldout
