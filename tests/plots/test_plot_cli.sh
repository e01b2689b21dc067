#!/usr/bin/env bash
# `attnscope plot` end to end on the archived sample capture: every kind writes a PNG of the
# asked size (or an SVG), bad selectors exit 1 naming what exists, bad options exit 2, and no
# output file is left behind on failure.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
size_of() { od -An -tu1 -j16 -N8 "$1" | tr -s ' '; }
for kind in heatmap grid diff tokens; do
  extra=()
  [ "$kind" = diff ] && extra=(--run main --run-b crashed)
  "$ATTNSCOPE" plot --in "$SAMPLE" --kind "$kind" --layer 0 --head 1 --size 640x480 \
    --out "$tmp/$kind.png" "${extra[@]}" >"$tmp/out" 2>"$tmp/err" || fail "$kind: exit $? ($(cat "$tmp/err"))"
  [ "$(size_of "$tmp/$kind.png")" = " 0 0 2 128 0 0 1 224" ] || fail "$kind: not a 640x480 PNG"
  grep -q "^wrote $tmp/$kind.png (640x480)" "$tmp/out" || fail "$kind: output was $(cat "$tmp/out")"
done
"$ATTNSCOPE" plot "$SAMPLE" --kind heatmap --run ablate --layer 0 --head 3 --out "$tmp/a.svg" >/dev/null \
  || fail "svg of a partial-heads run"
grep -q "<svg" "$tmp/a.svg" || fail "not an SVG"
# layers needs per-head metrics; the sample has none of that shape.
if "$ATTNSCOPE" plot --in "$SAMPLE" --kind layers --out "$tmp/l.png" 2>"$tmp/err"; then fail "layers without metrics"; fi
grep -q "attnscope analyze" "$tmp/err" || fail "layers: message was $(cat "$tmp/err")"
set +e
"$ATTNSCOPE" plot --in "$SAMPLE" --layer 5 --out "$tmp/x.png" 2>"$tmp/err"; rc=$?
set -e
[ $rc -eq 1 ] || fail "--layer 5: exit $rc"
grep -q "has maps of layers 0,1" "$tmp/err" || fail "--layer 5: message was $(cat "$tmp/err")"
set +e
"$ATTNSCOPE" plot --in "$SAMPLE" --kind pie --out "$tmp/x.png" 2>/dev/null; rc1=$?
"$ATTNSCOPE" plot --in "$SAMPLE" --out "$tmp/x.png" --size big 2>/dev/null; rc2=$?
"$ATTNSCOPE" plot --in "$SAMPLE" --out "$tmp/x.gif" 2>/dev/null; rc3=$?
set -e
[ $rc1 -eq 2 ] && [ $rc2 -eq 2 ] && [ $rc3 -eq 1 ] || fail "exit codes $rc1 $rc2 $rc3 (expected 2 2 1)"
[ ! -e "$tmp/x.png" ] && [ ! -e "$tmp/x.gif" ] || fail "output written on failure"
echo "plot_cli: all checks passed"
