#!/usr/bin/env bash
# attnscope-viewer from the command line: --screenshot renders each view of the archived sample
# capture to a PNG of the asked size and exits 0; a file that is not a capture, a bad option and
# a missing file exit non-zero with a message, and write no PNG.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
for view in grid head tokens; do
  "$VIEWER" "$SAMPLE" --screenshot "$tmp/$view.png" --view "$view" --size 640x480 2>"$tmp/err" \
    || fail "$view: exit $? ($(cat "$tmp/err"))"
  [ -s "$tmp/$view.png" ] || fail "$view: no PNG"
  # PNG signature and IHDR width/height (big-endian at bytes 16..23).
  dims=$(od -An -tu1 -j16 -N8 "$tmp/$view.png" | tr -s ' ')
  [ "$dims" = " 0 0 2 128 0 0 1 224" ] || fail "$view: size bytes '$dims', expected 640x480"
done
echo "not hdf5" > "$tmp/junk.h5"
if "$VIEWER" "$tmp/junk.h5" --screenshot "$tmp/junk.png" 2>"$tmp/err"; then fail "junk file accepted"; fi
grep -q "Cannot open junk.h5" "$tmp/err" || fail "junk: message was: $(cat "$tmp/err")"
[ ! -e "$tmp/junk.png" ] || fail "junk: PNG written"
if "$VIEWER" "$SAMPLE" --screenshot "$tmp/x.png" --view pie 2>"$tmp/err"; then fail "--view pie accepted"; fi
grep -q "view 'pie'" "$tmp/err" || fail "bad view: message was: $(cat "$tmp/err")"
if "$VIEWER" "$tmp/missing.h5" --screenshot "$tmp/m.png" 2>"$tmp/err"; then fail "missing file accepted"; fi
echo "viewer_cli: all checks passed"
