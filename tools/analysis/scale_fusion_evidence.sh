#!/usr/bin/env bash
# The evidence tables of configs/ssr/README.md: plain inference, mean-TTA, HMA, softmax, SSR
# (official and chosen recipe) and the AFA neck vs the concat node, 3 seeds each, on the
# scale-sensitive synthetic data; then the SSR and AFA ablations and the held-out data set.
#   bash tools/analysis/scale_fusion_evidence.sh [WORK_DIR] [GROUP...]
#     WORK_DIR default work_dirs/scale_fusion_benchmark (per-run results are cached there)
#     GROUP    default: main; also ssr-ablation, afa-ablation, heldout (main rows on data b)
# Environment: PYTHON (default: the project's environment), JOBS (parallel trainings, 2),
# SEEDS (default "0 1 2"), ITERS (default 1000).
# The main table takes about 30 minutes on an idle 2-core CPU; each table is written to
# WORK_DIR/table_<data>_<group>.md and printed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [[ -z "${PYTHON:-}" ]]; then
    eval "$(bash scripts/bootstrap.sh --print-env)"
    PYTHON="$PY"
fi
export MMSEG_FUSION_SKIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
W="${1:-work_dirs/scale_fusion_benchmark}"
shift || true
groups=("${@:-main}")
read -r -a seeds <<<"${SEEDS:-0 1 2}"
for g in "${groups[@]}"; do
    data=a
    rows=$g
    if [[ $g == heldout ]]; then data=b; rows=main; fi
    echo "== $g (data $data)"
    "$PYTHON" tools/analysis/scale_fusion_benchmark.py --rows "$rows" --data "$data" \
        --seeds "${seeds[@]}" --iters "${ITERS:-1000}" --jobs "${JOBS:-2}" --out "$W"
done
