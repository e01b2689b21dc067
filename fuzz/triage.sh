#!/usr/bin/env bash
# Classifies crash/timeout/oom inputs of a fuzz target by where they fail:
#   fuzz/triage.sh TARGET FILE...
# prints one line per input: "hdf5 FILE: <frame>" when the innermost frame outside the
# sanitizer/fuzzer runtime and libc is in libhdf5 (a fault or hang inside the HDF5 library),
# "ours FILE: <frame>" otherwise, "clean FILE" when it no longer fails. Exit status 1 when any
# input is "ours". Used by tools/fuzz.sh for store_reader, where libhdf5 1.10.8's own crashes
# and hangs on hostile files are known and documented (docs/fuzzing.md) and must not hide ours.
set -uo pipefail
FUZZ_DIR=${FUZZ_DIR:-build-fuzz}
t=$1
shift
bin="$FUZZ_DIR/bin/fuzz_$t"
status=0
for f in "$@"; do
  out=$(ASAN_OPTIONS=detect_leaks=1:symbolize=1:fast_unwind_on_malloc=0 LSAN_OPTIONS=suppressions=$(dirname "$0")/lsan.supp timeout 120 "$bin" -timeout=10 -rss_limit_mb=2048 "$f" 2>&1)
  rc=$?
  if [ $rc -eq 0 ]; then
    echo "clean $f"
    continue
  fi
  frame=$(printf '%s\n' "$out" | grep -E '^ +#[0-9]+ 0x' |
    grep -vE ' in (__sanitizer|__asan|__ubsan|__lsan|__interceptor|__libc|fuzzer::|__sigsetjmp|raise|abort|malloc|calloc|realloc|free|operator new|operator delete|std::terminate|__cxa|__gxx|_Unwind)' |
    grep -vE '\((/lib/x86_64-linux-gnu/libc\.so|/lib/x86_64-linux-gnu/libstdc\+\+|/lib/x86_64-linux-gnu/libgcc)' |
    grep -vE '/libc\.so\.6\+|sysdeps/| in __(mem|str|wmem)[a-z0-9_]*' | head -1)
  if printf '%s' "$frame" | grep -q 'libhdf5'; then
    echo "hdf5 $f: $(printf '%s' "$frame" | sed -E 's/^ +//; s/ \(BuildId.*//')"
  else
    echo "ours $f: $(printf '%s' "$frame" | sed -E 's/^ +//; s/ \(BuildId.*//')"
    status=1
  fi
done
exit $status
