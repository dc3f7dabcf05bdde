#!/usr/bin/env bash
# Wall time of a from-scratch `dvc repro` of a profile, in a temporary copy of this repository.
#   bash benchmarks/time_repro.sh smoke|tiny [stage...]     (KEEP=1: keep the copy; stage start times in stage_times.txt)
set -euo pipefail
profile=${1:-smoke}; shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$root/.venv/bin/python}
tmp=$(mktemp -d)
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$tmp"' EXIT; else echo "keeping $tmp" >&2; fi
(cd "$root" && git ls-files --cached --others --exclude-standard -z | xargs -0 -I{} cp --parents {} "$tmp")
cd "$tmp"
"$py" -m reasonlab.profiles "$profile" >/dev/null
git init -q && git add -A && git -c user.email=b@b -c user.name=b commit -qm bench
export PATH="$(dirname "$py"):$PATH" HF_HUB_OFFLINE=1 PYTHONPATH="$tmp/src"
start=$(date +%s)
"$py" -m dvc repro "$@" 2>&1 | while IFS= read -r line; do
    case "$line" in *"Running stage"*) echo "$(date +%s) $line" >> stage_times.txt;; esac; echo "$line"; done > repro.log
[ "${PIPESTATUS[0]}" = 0 ] || { tail -n 40 repro.log; exit 1; }
end=$(date +%s)
printf '{"profile": "%s", "stages": "%s", "wall_s": %d}\n' "$profile" "$*" "$((end - start))"
