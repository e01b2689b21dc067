#!/usr/bin/env bash
# Regenerates the README's screenshots from a real capture of the bundled sample model:
# two runs of samples/prompts/prompts.txt (without and with ACT, for the diff view),
# metrics from `attnscope analyze`, then `attnscope-viewer --screenshot` for each view.
# Usage: bash docs/screenshots/make_screenshots.sh [BUILD_DIR]   (default build/)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-build}/bin
OUT=docs/screenshots
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
"$BIN/attnscope" capture --prompts samples/prompts/prompts.txt --out "$tmp/cap.h5" -q
"$BIN/attnscope" capture --prompts samples/prompts/prompts.txt --out "$tmp/cap.h5" --run act --method act -q
"$BIN/attnscope" analyze --in "$tmp/cap.h5" --run main --out "$tmp/metrics.h5" > /dev/null 2>&1
V=("$BIN/attnscope-viewer" "$tmp/cap.h5" --metrics "$tmp/metrics.h5" --run main --prompt 3)
"${V[@]}" --view grid   --layer 2 --head 3 --size 1000x900 --screenshot "$OUT/grid.png"
"${V[@]}" --view head   --layer 2 --head 3 --size 900x850  --screenshot "$OUT/head.png"
"${V[@]}" --view tokens --layer 3 --heads 0,2,4 --token 16 --size 800x520 --screenshot "$OUT/tokens.png"
"${V[@]}" --view layers --metric entropy_norm_mean --size 900x520 --screenshot "$OUT/layers.png"
"${V[@]}" --view diff   --layer 3 --head 1 --run-b act --size 900x850 --screenshot "$OUT/diff.png"
"$BIN/attnscope" plot --in "$tmp/cap.h5" --prompt 3 --kind heatmap --layer 5 --head 1 --log \
  --colormap magma --size 700x650 --out "$OUT/plot-heatmap-log.png"
# The whole window (a hidden test case of the gui test binary drives it).
if [ -x "$BIN/attnscope_tests_gui" ]; then
  ATTNSCOPE_WINDOW_SHOT="$OUT/window.png" ATTNSCOPE_WINDOW_FILE="$tmp/cap.h5" \
  ATTNSCOPE_WINDOW_METRICS="$tmp/metrics.h5" "$BIN/attnscope_tests_gui" "[window]" > /dev/null
fi
ls -la "$OUT"/*.png
