#!/usr/bin/env bash
# Screenshot every rendered report (reports/*/*.html) with headless Chromium, to look at them.
# Usage: scripts/check_reports.sh OUT_DIR [REPORTS_DIR]   (default REPORTS_DIR: reports)
# Writes OUT_DIR/<report>.png; WINDOW=1280,8000 for a taller page. Needs `chromium` (Debian: apt-get install chromium).
# A maintainer's tool, not used by the pipeline or CI.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OUT_DIR [REPORTS_DIR]" >&2; exit 2; }
out=$1
reports=${2:-reports}
window=${WINDOW:-1280,4000}
browser=${CHROMIUM:-chromium}
command -v "$browser" >/dev/null || { echo "$browser not found (apt-get install chromium, or set CHROMIUM)" >&2; exit 1; }
mkdir -p "$out"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
shopt -s nullglob
pages=("$reports"/*/*.html)
[ ${#pages[@]} -gt 0 ] || { echo "no reports in $reports/*/*.html (dvc repro first)" >&2; exit 1; }
for page in "${pages[@]}"; do
  name=$(basename "$page" .html)
  if ! "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
      --disable-component-update --disable-sync --user-data-dir="$profile" --window-size="$window" \
      --screenshot="$out/$name.png" "file://$(realpath "$page")" >"$profile/log" 2>&1; then
    cat "$profile/log" >&2
    exit 1
  fi
  echo "$out/$name.png  <- $page"
done
