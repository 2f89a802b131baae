#!/usr/bin/env bash
# Idempotent set-up of the Python environment that runs mmseg_fusion.
#
#   bash scripts/bootstrap.sh            # create/refresh the environment
#   source <(bash scripts/bootstrap.sh --print-env)   # nothing else; print PY=...
#   bash scripts/bootstrap.sh --check-torch 2.5.1     # nothing else; print keep/replace
#
# Environment used, in this order:
#   1. $MMSEG_FUSION_PYTHON (an interpreter you manage yourself), else
#   2. the active virtual environment ($VIRTUAL_ENV), else
#   3. a project-local virtual environment in ./.venv (created on first use).
# A torch that is already importable there is kept if it is >= 2.6 (MIN_TORCH; mmseg_fusion
# loads checkpoints with weights_only=True and an allow-list, which needs it; setup.py asks
# for torch>=2.6); an older one, or none, is replaced by torch==$TORCH_VERSION (CPU wheel on
# machines without CUDA), and the log says why.  mmcv 2.1.0 is compiled from source
# with its CPU ops (about 8 minutes on 2 cores); pip caches the wheel, so a second set-up on
# the same machine takes seconds.  A stamp records what was installed; when the
# requirement files have not changed and the stack imports, nothing is done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
MIN_TORCH=2.6
log() { printf '[setup %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# torch_decision VERSION: print "keep" when an installed torch VERSION (e.g. 2.6.0+cu124,
# 2.13.0, 2.7.0.dev20250101) is >= $MIN_TORCH, else "replace: <why>"; "replace" for anything
# that is not a version.
torch_decision() {
    local version="$1" major minor want_major want_minor
    if [[ ! "$version" =~ ^([0-9]+)\.([0-9]+)([.+a-z].*)?$ ]]; then
        echo "replace: '$version' is not a torch version"
        return
    fi
    major=$((10#${BASH_REMATCH[1]}))
    minor=$((10#${BASH_REMATCH[2]}))
    want_major=${MIN_TORCH%%.*}
    want_minor=${MIN_TORCH#*.}
    if (( major > want_major || (major == want_major && minor >= want_minor) )); then
        echo "keep"
    else
        echo "replace: torch $version is older than $MIN_TORCH; mmseg_fusion loads" \
            "checkpoints with weights_only=True and an allow-list of what mmengine writes," \
            "which needs torch >= $MIN_TORCH"
    fi
}

if [[ "${1:-}" == "--check-torch" ]]; then
    [[ $# -eq 2 ]] || { echo "usage: bash scripts/bootstrap.sh --check-torch VERSION" >&2; exit 2; }
    torch_decision "$2"
    exit 0
fi

if [[ -n "${MMSEG_FUSION_PYTHON:-}" ]]; then
    PY="$MMSEG_FUSION_PYTHON"
elif [[ -n "${VIRTUAL_ENV:-}" && -x "${VIRTUAL_ENV}/bin/python" ]]; then
    PY="${VIRTUAL_ENV}/bin/python"
else
    VENV="$ROOT/.venv"
    if [[ ! -x "$VENV/bin/python" ]]; then
        base_py="$(command -v python3 || command -v python)"
        log "creating virtual environment $VENV with $($base_py --version 2>&1)"
        "$base_py" -m venv "$VENV"
    fi
    PY="$VENV/bin/python"
fi

if [[ "${1:-}" == "--print-env" ]]; then
    echo "PY=$PY"
    exit 0
fi

stamp_dir="$("$PY" -c 'import sys; print(sys.prefix)')"
stamp="$stamp_dir/.mmseg_fusion-setup"
want="$(cat "$ROOT"/requirements/*.txt "$ROOT/setup.py" | sha256sum | cut -c1-16) $TORCH_VERSION"
check='import torch, mmcv, mmcv.ops, mmengine, mmseg, mmseg.models, mmpretrain, mmseg_fusion'

# up to date: same stamp, the stack imports and its torch is still one to keep
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] \
        && have_torch="$(cd "$ROOT" && "$PY" -W ignore -c "$check; print(torch.__version__)" \
                         2>/dev/null | tail -n 1)" \
        && [[ "$(torch_decision "$have_torch")" == keep ]]; then
    log "environment up to date ($PY)"
    exit 0
fi

# Machine-wide pip settings may name index folders that do not exist; hide that noise only.
pip() {
    "$PY" -m pip --disable-pip-version-check "$@" 2> >(grep -v 'is ignored: it is neither' >&2)
}
C="$ROOT/requirements/constraints.txt"

log "step 1/5: pip and build tools"
pip install -q --upgrade "pip>=23"
pip install -q -c "$C" -r "$ROOT/requirements/build.txt"

log "step 2/5: torch"
if have_torch="$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null)"; then
    decision="$(torch_decision "$have_torch")"
else
    decision="replace: no importable torch"
fi
mmcv_flags=()
if [[ "$decision" == keep ]]; then
    log "  keeping the installed torch $have_torch (>= $MIN_TORCH)"
else
    log "  ${decision#replace: }"
    log "  installing torch==$TORCH_VERSION"
    pip install -q "torch==$TORCH_VERSION"
    # mmcv's ops (and pip's cached mmcv wheel) built against the replaced torch do not load
    [[ -n "$have_torch" ]] && mmcv_flags=(--force-reinstall --no-deps --no-cache-dir)
fi

log "step 3/5: mmcv 2.1.0 with compiled ops (first time: ~8 min on 2 cores; cached afterwards)"
if "$PY" -c 'import mmcv, mmcv.ops; assert mmcv.__version__ == "2.1.0"' >/dev/null 2>&1; then
    log "  mmcv 2.1.0 with ops already installed"
else
    if [[ ${#mmcv_flags[@]} -eq 0 ]] \
            && "$PY" -c 'import mmcv; assert mmcv.__version__ == "2.1.0"' >/dev/null 2>&1; then
        log "  mmcv 2.1.0 is installed but its ops do not load (built against another torch?)"
        mmcv_flags=(--force-reinstall --no-deps --no-cache-dir)
    fi
    # The compiled ops need torch at build time: no build isolation.  Progress lines of the
    # ninja build ("[k/n] c++ ...") are shown shortened; the full log is kept on failure.
    build_log="$(mktemp -t mmcv-build.XXXXXX.log)"
    set +e
    MAX_JOBS="${MAX_JOBS:-$(nproc)}" MMCV_WITH_OPS=1 FORCE_CUDA="${FORCE_CUDA:-0}" \
        "$PY" -m pip --disable-pip-version-check install -v --no-build-isolation \
        ${mmcv_flags[@]+"${mmcv_flags[@]}"} -c "$C" "mmcv==2.1.0" 2>&1 | tee "$build_log" \
        | bash "$ROOT/scripts/progress_filter.sh" \
            '^ *\[[0-9]+/[0-9]+\]|Successfully|Using cached|ERROR|error:' '  mmcv: ' >&2
    rc=${PIPESTATUS[0]}
    set -e
    if [[ $rc -ne 0 ]]; then
        log "mmcv build failed (exit $rc); full log: $build_log"
        exit "$rc"
    fi
    rm -f "$build_log"
fi

log "step 4/5: mmengine, mmsegmentation, mmpretrain, ONNX export and test tools"
pip install -q -c "$C" -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/deploy.txt" \
    -r "$ROOT/requirements/tests.txt"

log "step 5/5: mmseg_fusion (editable)"
pip install -q --no-build-isolation --no-deps -e "$ROOT"

(cd "$ROOT" && "$PY" -W ignore -c "$check") || { log "the installed stack does not import"; exit 1; }
echo "$want" > "$stamp"
log "environment ready: $PY"
