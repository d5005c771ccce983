#!/usr/bin/env bash
# Launch SGLang with EAGLE-3 at the validated config (a thin wrapper over `eagle3-patch serve`).
#
#   MODEL=Qwen/Qwen3.6-27B DRAFTER=./compressed ./scripts/serve_sglang.sh --tp 2 --port 31000
#
# MODEL        target folder or Hub repo id          (default Qwen/Qwen3.6-27B)
# DRAFTER      drafter folder, or full / compressed  (default compressed)
# DRAFTER_REPO where full / compressed are looked up (default: eagle3-patch's, Ex0bit/Qwen3.6-27B-PRISM-EAGLE3)
# PYTHON       interpreter that runs SGLang          (default: the one eagle3-patch runs in)
# EAGLE3_PATCH the eagle3-patch command              (default eagle3-patch)
# Arguments go to SGLang unchanged.
set -euo pipefail

MODEL="${MODEL:-Qwen/Qwen3.6-27B}"
DRAFTER="${DRAFTER:-compressed}"
EAGLE3_PATCH="${EAGLE3_PATCH:-eagle3-patch}"

options=(--model "$MODEL" --drafter "$DRAFTER")
if [[ -n "${DRAFTER_REPO:-}" ]]; then
    options+=(--drafter-repo "$DRAFTER_REPO")
fi
if [[ -n "${PYTHON:-}" ]]; then
    options+=(--python "$PYTHON")
fi

exec "$EAGLE3_PATCH" serve "${options[@]}" -- "$@"
