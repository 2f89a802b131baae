#!/usr/bin/env bash
# The main job: generate the synthetic multi-scale data (if missing), train the demo model with
# tools/train.py, evaluate it with tools/test.py and print the per-class IoU table.
#   bash scripts/demo.sh [CONFIG]
# Environment: WORK_DIR (default work_dirs/demo), DATA_ROOT (default data/synthetic_scales).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh
eval "$(bash scripts/bootstrap.sh --print-env)"
export MMSEG_FUSION_SKIP_VERSION_CHECK=1

CONFIG="${1:-configs/synthetic/fcn_r18-d8_1xb8-600_synthetic-128x128.py}"
DATA_ROOT="${DATA_ROOT:-data/synthetic_scales}"
WORK_DIR="${WORK_DIR:-work_dirs/demo}"
NAME="$(basename "$CONFIG" .py)"
data_opts=(train_dataloader.dataset.data_root="$DATA_ROOT"
           val_dataloader.dataset.data_root="$DATA_ROOT"
           test_dataloader.dataset.data_root="$DATA_ROOT")

if [[ ! -d "$DATA_ROOT/img_dir/val" ]]; then
    echo "== generating the synthetic data in $DATA_ROOT"
    "$PY" tools/dataset_converters/synthetic_scales.py "$DATA_ROOT"
fi

echo "== training $NAME (log: $WORK_DIR/$NAME)"
start=$SECONDS
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR/$NAME" --cfg-options "${data_opts[@]}" \
    2>&1 | grep --line-buffered -E 'Iter\(train\)|Saving checkpoint|error|Error' \
    | sed -u -E 's/^.*(Iter\(train\))/\1/; s/  +/ /g' | cut -c1-120
echo "   trained in $((SECONDS - start)) s"

ckpt="$(cat "$WORK_DIR/$NAME/last_checkpoint")"
echo "== testing $ckpt"
"$PY" tools/test.py "$CONFIG" "$ckpt" --work-dir "$WORK_DIR/$NAME" \
    --cfg-options "${data_opts[@]}" > "$WORK_DIR/$NAME/test.log" 2>&1 \
    || { tail -40 "$WORK_DIR/$NAME/test.log"; exit 1; }
sed -n '/per class results/,/^+-*+-*+-*+$/p' "$WORK_DIR/$NAME/test.log" | sed -E 's/^.* - mmengine - INFO - //'
awk '/^\+/{n++} n>=3 && n<=4 && /^\|/' "$WORK_DIR/$NAME/test.log" >/dev/null
grep -Eo 'aAcc: [0-9.]+ +mIoU: [0-9.]+ +mAcc: [0-9.]+' "$WORK_DIR/$NAME/test.log" | tail -1
