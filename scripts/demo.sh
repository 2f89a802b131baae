#!/usr/bin/env bash
# The main job, the recipe the benchmark recommends (benchmarks/README.md): generate the
# scale-limited synthetic data (if missing), train the demo's plain FCN with mmseg's scale
# augmentation, add SSR to it by a short fine-tune (a retrofit: only the scale attention is new),
# evaluate both with tools/test.py (the plain model at scale 1.0 and as the mean over 5 scales,
# the SSR model at scale 1.0 and fused over the same 5 scales), print the per-class IoU table,
# draw the per-scale weights of a few validation images, and run mmseg's MMSegInferencer on one
# of them (README: "Use a trained model"), writing its picture next to them.
#   bash scripts/demo.sh            # the two stages above
#   bash scripts/demo.sh CONFIG     # one config instead: train, test (fused if it is SSR), draw
# Environment: WORK_DIR (default work_dirs/demo), DATA_ROOT (default data/synthetic_scales,
# where every synthetic config reads), SEED (default: the configs' randomness.seed, 0 for the
# demo's). On a machine without CUDA the run is deterministic (randomness.deterministic=True),
# so the same seed prints the same numbers on the same CPU thread count.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh
eval "$(bash scripts/bootstrap.sh --print-env)"
export MMSEG_FUSION_SKIP_VERSION_CHECK=1

BASE_CONFIG=""
if [[ $# -eq 0 ]]; then
    BASE_CONFIG=configs/synthetic/fcn_r18-d8-w8_1xb8-2766_synthetic-128x128.py
fi
CONFIG="${1:-configs/ssr/ssr-retrofit_fcn_r18-d8-w8_1xb8-195_synthetic-128x128.py}"
DATA_ROOT="${DATA_ROOT:-data/synthetic_scales}"
NAME="$(basename "$CONFIG" .py)"
WORK="${WORK_DIR:-work_dirs/demo}/$NAME"
data_opts=(train_dataloader.dataset.data_root="$DATA_ROOT"
           val_dataloader.dataset.data_root="$DATA_ROOT"
           test_dataloader.dataset.data_root="$DATA_ROOT")
seed_opts=()
if [[ -n "${SEED:-}" ]]; then seed_opts+=(randomness.seed="$SEED"); fi
if ! "$PY" -c 'import sys, torch; sys.exit(torch.cuda.is_available())' 2>/dev/null; then
    seed_opts+=(randomness.deterministic=True)
fi

# train CONFIG WORK [OPTION ...]: tools/train.py with the training lines shown as they come
train() {
    local config="$1" work="$2"
    shift 2
    mkdir -p "$work"
    echo "== training $(basename "$config" .py) (full log under $work)"
    local start=$SECONDS
    "$PY" tools/train.py "$config" --work-dir "$work" \
        --cfg-options "${data_opts[@]}" "${seed_opts[@]}" "$@" 2>&1 \
        | tee "$work.train.log" \
        | bash scripts/progress_filter.sh 'Iter\(train\)|Error' '' '^.* - INFO - '
    echo "   trained in $((SECONDS - start)) s"
}
# evaluate LABEL LOG CONFIG CHECKPOINT [OPTION ...]: tools/test.py; a table row is kept
rows=()
evaluate() {
    local label="$1" log="$2" config="$3" ckpt="$4"
    shift 4
    echo "== testing: $label"
    "$PY" tools/test.py "$config" "$ckpt" --work-dir "${log%%.test*}" \
        --cfg-options "${data_opts[@]}" "$@" > "$log" 2>&1 || { tail -40 "$log"; exit 1; }
    rows+=("$label|$log")
}
metrics() { grep -Eo 'aAcc: [0-9.]+ +mIoU: [0-9.]+ +mAcc: [0-9.]+' "$1" | tail -1; }

if [[ ! -d "$DATA_ROOT/img_dir/val" ]]; then
    echo "== generating the synthetic data in $DATA_ROOT"
    "$PY" tools/dataset_converters/synthetic_scales.py "$DATA_ROOT" --style wide
fi

set -o pipefail
load_opts=()
if [[ -n "$BASE_CONFIG" ]]; then
    BASE_WORK="${WORK_DIR:-work_dirs/demo}/$(basename "$BASE_CONFIG" .py)"
    train "$BASE_CONFIG" "$BASE_WORK"
    base_ckpt="$(cat "$BASE_WORK/last_checkpoint")"
    load_opts=(load_from="$base_ckpt")
fi
train "$CONFIG" "$WORK" "${load_opts[@]}"
ckpt="$(cat "$WORK/last_checkpoint")"
is_ssr=false
grep -q SSREncoderDecoder "$WORK"/*.py 2>/dev/null && is_ssr=true
scales="scales=$("$PY" -c 'import sys, mmseg_fusion; from mmengine.config import Config
print(tuple(Config.fromfile(sys.argv[1]).model.get("test_cfg", {}).get("scales", ())))' \
    "$CONFIG" 2>/dev/null | tail -1)"
if [[ -n "$BASE_CONFIG" ]]; then
    evaluate "plain + RandomResize, scale 1.0" "$BASE_WORK.test.log" "$BASE_CONFIG" "$base_ckpt"
    evaluate "plain + RandomResize, mean of test_cfg.$scales" "$BASE_WORK.test-mean.log" \
        "$CONFIG" "$base_ckpt" model.fusion=mean
fi
if $is_ssr; then
    evaluate "$([[ -n "$BASE_CONFIG" ]] && echo "+ SSR retrofit, ")scale 1.0" \
        "$WORK.test-single.log" "$CONFIG" "$ckpt" 'model.test_cfg.scales=(1.0,)'
    evaluate "$([[ -n "$BASE_CONFIG" ]] && echo "+ SSR retrofit, ")fused, test_cfg.$scales" \
        "$WORK.test.log" "$CONFIG" "$ckpt"
else
    evaluate "$NAME" "$WORK.test.log" "$CONFIG" "$ckpt"
fi
printf '\n| evaluation | aAcc | mIoU | mAcc |\n|---|---|---|---|\n'
for row in "${rows[@]}"; do
    read -r _ aacc _ miou _ macc <<<"$(metrics "${row#*|}")"
    LC_ALL=C printf '| %s | %.2f | %.2f | %.2f |\n' "${row%%|*}" "$aacc" "$miou" "$macc"
done
echo
awk '/per class results/ {on = 1}
     on {sub(/^.* - INFO - /, ""); print; if ($0 ~ /^\+-/) n++; if (n == 3) exit}' "$WORK.test.log"

if $is_ssr; then
    echo "== drawing the per-scale weights of 3 validation images"
    "$PY" tools/analysis/visualize_scale_attention.py "$CONFIG" "$ckpt" \
        "$DATA_ROOT"/img_dir/val/0000{0,1,2}.png --out-dir "$WORK/scale_attention" \
        > "$WORK.vis.log" 2>&1 || { tail -20 "$WORK.vis.log"; exit 1; }
    ls "$WORK"/scale_attention/*.png
fi

echo "== MMSegInferencer on a validation image (mmseg's own API, as in the README)"
image="$DATA_ROOT/img_dir/val/00018.png"  # the README's picture: all four shapes, several sizes
[[ -f "$image" ]] || image="$(ls "$DATA_ROOT"/img_dir/val/* | head -1)"
"$PY" - "$CONFIG" "$ckpt" "$image" "$WORK/inferencer" \
    > "$WORK.inferencer.log" 2>&1 <<'EOF' || { tail -20 "$WORK.inferencer.log"; exit 1; }
import sys

from mmseg.apis import MMSegInferencer

config, checkpoint, image, out_dir = sys.argv[1:]
MMSegInferencer(model=config, weights=checkpoint)(image, out_dir=out_dir)
EOF
ls "$WORK/inferencer/vis/$(basename "$image")"
