#!/usr/bin/env bash
# The evidence tables of configs/ssr/README.md: plain inference with and without scale
# augmentation (single scale and mean-TTA), HMA, softmax over scales and SSR with the chosen
# training recipe, and the AFA neck vs the concat node, 3 seeds each, on the scale-limited
# synthetic data set a; then the SSR and AFA ablations and the held-out data set b.
#   bash tools/analysis/scale_fusion_evidence.sh [WORK_DIR] [GROUP...]
#     WORK_DIR default work_dirs/scale_fusion_benchmark (per-run results are cached there)
#     GROUP    default: main; also ssr-ablation, afa-ablation, hma-order, heldout (its rows on data b)
# Environment: PYTHON (default: the project's environment), JOBS (parallel trainings, 2),
# SEEDS (default "0 1 2"), ITERS (default 1000), DEVICE (default cpu; e.g. cuda with JOBS=8).
# The main table takes about 30 minutes on an idle 2-core CPU; each table is written to
# WORK_DIR/table_<data>_<group>.md and printed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [[ -z "${PYTHON:-}" ]]; then
    bash scripts/bootstrap.sh
    eval "$(bash scripts/bootstrap.sh --print-env)"
    PYTHON="$PY"
fi
export MMSEG_FUSION_SKIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
W="${1:-work_dirs/scale_fusion_benchmark}"
shift || true
groups=("${@:-main}")
read -r -a seeds <<<"${SEEDS:-0 1 2}"
for g in "${groups[@]}"; do
    data=a
    if [[ $g == heldout ]]; then data=b; fi
    echo "== $g (data $data)"
    "$PYTHON" tools/analysis/scale_fusion_benchmark.py --rows "$g" --data "$data" \
        --seeds "${seeds[@]}" --iters "${ITERS:-1000}" --jobs "${JOBS:-2}" \
        --device "${DEVICE:-cpu}" --out "$W"
done
