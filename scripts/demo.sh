#!/usr/bin/env bash
# The main job: generate the scale-limited synthetic data (if missing), train an SSR model
# (scale-space rendering over a small FCN, the recipe of the benchmark in configs/ssr/README.md)
# with tools/train.py, evaluate the same checkpoint at scale 1.0 and fused over 5 scales with
# tools/test.py, print the per-class IoU table, draw the per-scale weights of a few
# validation images, and run mmseg's MMSegInferencer on one of them (README: "Use a trained
# model"), writing its picture next to them.
#   bash scripts/demo.sh [CONFIG]
# Environment: WORK_DIR (default work_dirs/demo), DATA_ROOT (default data/synthetic_scales,
# where every synthetic config reads), SEED (default: the config's randomness.seed, 0 for the
# demo config). On a machine without CUDA the run is deterministic
# (randomness.deterministic=True), so the same seed prints the same numbers on the same CPU
# thread count.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh
eval "$(bash scripts/bootstrap.sh --print-env)"
export MMSEG_FUSION_SKIP_VERSION_CHECK=1

CONFIG="${1:-configs/ssr/ssr_fcn_r18-d8_1xb8-1500_synthetic-128x128.py}"
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

if [[ ! -d "$DATA_ROOT/img_dir/val" ]]; then
    echo "== generating the synthetic data in $DATA_ROOT"
    "$PY" tools/dataset_converters/synthetic_scales.py "$DATA_ROOT" --style wide
fi

mkdir -p "$WORK"
echo "== training $NAME (full log under $WORK)"
start=$SECONDS
set -o pipefail
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK" --cfg-options "${data_opts[@]}" "${seed_opts[@]}" 2>&1 \
    | tee "$WORK.train.log" \
    | bash scripts/progress_filter.sh 'Iter\(train\)|Error' '' '^.* - INFO - '
echo "   trained in $((SECONDS - start)) s"

ckpt="$(cat "$WORK/last_checkpoint")"
rm -f "$WORK.test-single.log"
metrics() { grep -Eo 'aAcc: [0-9.]+ +mIoU: [0-9.]+ +mAcc: [0-9.]+' "$1" | tail -1; }
is_ssr=false
grep -q SSREncoderDecoder "$WORK"/*.py 2>/dev/null && is_ssr=true
if $is_ssr; then
    echo "== testing $ckpt at scale 1.0 only (the same checkpoint, no fusion)"
    "$PY" tools/test.py "$CONFIG" "$ckpt" --work-dir "$WORK" \
        --cfg-options "${data_opts[@]}" 'model.test_cfg.scales=(1.0,)' \
        > "$WORK.test-single.log" 2>&1 || { tail -40 "$WORK.test-single.log"; exit 1; }
fi
echo "== testing $ckpt (multi-scale fusion of the config's test scales)"
"$PY" tools/test.py "$CONFIG" "$ckpt" --work-dir "$WORK" --cfg-options "${data_opts[@]}" \
    > "$WORK.test.log" 2>&1 || { tail -40 "$WORK.test.log"; exit 1; }
if [[ -f "$WORK.test-single.log" ]]; then
    scales="$(grep -Eo 'scales=\([0-9., ]+\)' "$CONFIG" | tail -1)"
    printf '\n| evaluation of the same checkpoint | aAcc | mIoU | mAcc |\n|---|---|---|---|\n'
    for pair in "single scale 1.0:$WORK.test-single.log" "fused, test_cfg.${scales:-scales}:$WORK.test.log"; do
        read -r _ aacc _ miou _ macc <<<"$(metrics "${pair#*:}")"
        LC_ALL=C printf '| %s | %.2f | %.2f | %.2f |\n' "${pair%%:*}" "$aacc" "$miou" "$macc"
    done
    echo
fi
awk '/per class results/ {on = 1}
     on {sub(/^.* - INFO - /, ""); print; if ($0 ~ /^\+-/) n++; if (n == 3) exit}' "$WORK.test.log"
metrics "$WORK.test.log"

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
