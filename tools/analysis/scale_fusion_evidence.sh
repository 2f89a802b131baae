#!/usr/bin/env bash
# Single scale vs mean vs HMA vs SSR on the synthetic multi-scale data: same backbone (the demo
# FCN), same budget (the configs' 600 iterations at batch 8, seed 0); prints a Markdown table.
#   bash tools/analysis/scale_fusion_evidence.sh [WORK_DIR]   (default work_dirs/scale_fusion_evidence)
# Environment: PYTHON (default: the project's environment), ITERS (default 600),
# DATA_ROOT (default data/synthetic_scales; generated when missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [[ -z "${PYTHON:-}" ]]; then
    eval "$(bash scripts/bootstrap.sh --print-env)"
    PYTHON="$PY"
fi
export MMSEG_FUSION_SKIP_VERSION_CHECK=1
W="${1:-work_dirs/scale_fusion_evidence}"
ITERS="${ITERS:-600}"
DATA_ROOT="${DATA_ROOT:-data/synthetic_scales}"
[[ -d "$DATA_ROOT/img_dir/val" ]] || "$PYTHON" tools/dataset_converters/synthetic_scales.py "$DATA_ROOT" >/dev/null
opts=(train_dataloader.dataset.data_root="$DATA_ROOT" val_dataloader.dataset.data_root="$DATA_ROOT"
      test_dataloader.dataset.data_root="$DATA_ROOT" train_cfg.max_iters="$ITERS"
      train_cfg.val_interval=100000 param_scheduler.0.end="$ITERS"
      default_hooks.checkpoint.interval="$ITERS" randomness.seed=0)
FCN=configs/synthetic/fcn_r18-d8_1xb8-600_synthetic-128x128.py
SSR=configs/ssr/ssr_fcn_r18-d8_1xb8-600_synthetic-128x128.py
HMA=configs/ssr/hma_fcn_r18-d8_1xb8-600_synthetic-128x128.py
MEAN=configs/ssr/mean_fcn_r18-d8_1xb8-600_synthetic-128x128.py
mkdir -p "$W"
for m in fcn:$FCN ssr:$SSR hma:$HMA; do
    name=${m%%:*}
    if [[ ! -f "$W/$name/iter_$ITERS.pth" ]]; then
        echo "training $name ..." >&2
        start=$SECONDS
        "$PYTHON" tools/train.py "${m#*:}" --work-dir "$W/$name" --cfg-options "${opts[@]}" \
            > "$W/$name.train.log" 2>&1 || { tail -30 "$W/$name.train.log"; exit 1; }
        echo "  $name trained in $((SECONDS - start)) s" >&2
    fi
done

row() {  # row LABEL MODEL EVALUATION CONFIG CKPT [extra test.py args]
    local label=$1 model=$2 eval=$3 cfg=$4 ckpt=$5
    shift 5
    local log="$W/eval_$(echo "$label $eval" | tr -c 'a-zA-Z0-9' _).log"
    "$PYTHON" tools/test.py "$cfg" "$W/$ckpt" --work-dir "$W/eval" --cfg-options "${opts[@]}" "$@" \
        > "$log" 2>&1 || { tail -30 "$log"; exit 1; }
    local m
    m=$(grep -Eo 'aAcc: [0-9.]+ +mIoU: [0-9.]+ +mAcc: [0-9.]+' "$log" | tail -1)
    read -r _ aacc _ miou _ macc <<<"$m"
    echo "| $label | $model | $eval | $miou | $aacc | $macc |"
}

echo "| row | trained model | evaluation | mIoU | aAcc | mAcc |"
echo "|---|---|---|---|---|---|"
row 'single scale' FCN 'scale 1.0' $MEAN fcn/iter_$ITERS.pth 'model.test_cfg.scales=(1.0,)'
row 'mean over test scales' FCN 'mean of the logits over 4 scales' $MEAN fcn/iter_$ITERS.pth
row HMA HMA 'HMA over 4 scales' $HMA hma/iter_$ITERS.pth
row SSR SSR 'SSR over 4 scales' $SSR ssr/iter_$ITERS.pth
row '(extra)' SSR 'scale 1.0 only' $SSR ssr/iter_$ITERS.pth 'model.test_cfg.scales=(1.0,)'
row '(extra)' SSR 'mean over 4 scales (density ignored)' $MEAN ssr/iter_$ITERS.pth
row '(extra)' SSR '`--tta`: 4 scales x 2 flips, SSRTTAModel' $SSR ssr/iter_$ITERS.pth --tta
