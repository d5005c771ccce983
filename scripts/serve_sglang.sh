#!/usr/bin/env bash
# Launch SGLang with EAGLE-3 at the validated config (a thin wrapper over `eagle3-patch serve`).
set -euo pipefail

# Messages use only bash builtins: they must print on a machine where little else is installed.
usage() {
    printf '%s\n' \
        "Usage: scripts/serve_sglang.sh [--dry-run] [--json] [-h|--help] [SGLANG_ARGS...]" \
        "" \
        "  MODEL=Qwen/Qwen3.6-27B DRAFTER=./compressed scripts/serve_sglang.sh --tp 2 --port 31000" \
        "" \
        "The script's own flags are exactly --dry-run, --json and -h/--help (passed to" \
        "\`eagle3-patch serve\`). Every other argument goes to SGLang, after \`--\`" \
        "(a \`--\` of your own ends the script's flags: what follows all goes to SGLang)." \
        "" \
        "Environment:" \
        "  MODEL         target folder or Hub repo id           (default Qwen/Qwen3.6-27B)" \
        "  DRAFTER       drafter folder, or full / compressed   (default compressed)" \
        "  DRAFTER_REPO  where full / compressed are looked up  (default: eagle3-patch's)" \
        "  PYTHON        interpreter that runs SGLang           (default: the one eagle3-patch runs in)" \
        "  EAGLE3_PATCH  the eagle3-patch command               (default: eagle3-patch on PATH," \
        "                                                        else \${PYTHON:-python3} -m eagle3_patch)"
}

ours=()
sglang=()
while (($#)); do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --dry-run|--json) ours+=("$1") ;;
        --) shift; sglang+=("$@"); break ;;
        *) sglang+=("$1") ;;
    esac
    shift
done

if [[ -n "${EAGLE3_PATCH:-}" ]]; then
    command=("$EAGLE3_PATCH")
elif command -v eagle3-patch >/dev/null 2>&1; then
    command=(eagle3-patch)
elif "${PYTHON:-python3}" -c 'import eagle3_patch' >/dev/null 2>&1; then
    command=("${PYTHON:-python3}" -m eagle3_patch)
else
    printf '%s\n' >&2 \
        "error: eagle3-patch is not installed: no \`eagle3-patch\` on PATH, and ${PYTHON:-python3} cannot import eagle3_patch." \
        "Install it from a checkout of this repository (it is not on PyPI):" \
        "  pipx install .        # or: python3 -m pip install ." \
        "or point the script at it: EAGLE3_PATCH=/path/to/eagle3-patch $0 ..."
    exit 127
fi

options=(--model "${MODEL:-Qwen/Qwen3.6-27B}" --drafter "${DRAFTER:-compressed}")
if [[ -n "${DRAFTER_REPO:-}" ]]; then
    options+=(--drafter-repo "$DRAFTER_REPO")
fi
if [[ -n "${PYTHON:-}" ]]; then
    options+=(--python "$PYTHON")
fi

exec "${command[@]}" serve "${options[@]}" ${ours[@]+"${ours[@]}"} -- ${sglang[@]+"${sglang[@]}"}
