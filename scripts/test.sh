#!/usr/bin/env bash
# Run the linter and the test suite (sets the environment up first).
#   bash scripts/test.sh           # default suite (CPU, ~10 min)
#   bash scripts/test.sh --all     # also the tests marked `slow`
#   bash scripts/test.sh -- -k ssr # extra pytest arguments after --
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh
eval "$(bash scripts/bootstrap.sh --print-env)"

marker=(-m "not slow")
extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --all) marker=(); shift ;;
        --) shift; extra=("$@"); break ;;
        *) extra+=("$1"); shift ;;
    esac
done

echo "== ruff"
"$PY" -m ruff check .
echo "== pytest"
# pytest exits 5 when it collected no test: that is a failure here, never a pass.
"$PY" -m pytest "${marker[@]}" "${extra[@]}"
