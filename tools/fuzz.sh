#!/usr/bin/env bash
# libFuzzer targets of the parsers of untrusted input (fuzz/, docs/fuzzing.md).
#
#   tools/fuzz.sh build                 configure (clang, ASan+UBSan) and build the targets
#   tools/fuzz.sh list                  names of the targets
#   tools/fuzz.sh run TARGET SECONDS [libFuzzer args...]
#                                       fuzz one target; new inputs go to the working corpus
#                                       $FUZZ_DIR/corpus/TARGET (seeded from fuzz/corpus/TARGET),
#                                       crashes to $FUZZ_DIR/artifacts/TARGET/
#   tools/fuzz.sh smoke [SECONDS]       build, then every target for SECONDS (default 20) on the
#                                       committed seeds and findings: CI's regression check
#   tools/fuzz.sh campaign SECONDS      every target for SECONDS, one after the other, at nice 19,
#                                       logs in $FUZZ_DIR/logs/ and a summary line per target
#   tools/fuzz.sh regress               every target once over fuzz/findings/ and the seeds
#
# One fuzzer process at a time, in-process (no -jobs/-workers). A crash, leak, sanitizer report, timeout
# (> 10 s per input) or out-of-memory (> 2 GiB) fails the command. FUZZ_DIR defaults to
# build-fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FUZZ_DIR=$(realpath -m "${FUZZ_DIR:-build-fuzz}")
TARGETS=(safetensors safetensors_index model_config prompts tokenizer_json tokenizer_encode
         store_reader)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/fuzz/lsan.supp:print_suppressions=0}
export ATTNSCOPE_SOURCE_DIR=$ROOT

build() {
  if [ ! -f "$FUZZ_DIR/build.ninja" ]; then
    cmake -S fuzz -B "$FUZZ_DIR" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
  fi
  cmake --build "$FUZZ_DIR" --target fuzz_targets
}

# Options every run shares.
common_args() {
  local t=$1
  local args=(-rss_limit_mb=2048 -timeout=10 -print_final_stats=1)
  [ -f "fuzz/dicts/$t.dict" ] && args+=("-dict=fuzz/dicts/$t.dict")
  printf '%s\n' "${args[@]}"
}

run() {
  local t=$1 secs=$2
  shift 2
  local bin="$FUZZ_DIR/bin/fuzz_$t"
  [ -x "$bin" ] || { echo "fuzz: no $bin; run tools/fuzz.sh build" >&2; exit 2; }
  local work="$FUZZ_DIR/corpus/$t" art="$FUZZ_DIR/artifacts/$t"
  mkdir -p "$work" "$art"
  local dirs=("$work" "$ROOT/fuzz/corpus/$t")
  [ -d "fuzz/findings/$t" ] && dirs+=("$ROOT/fuzz/findings/$t")
  mapfile -t args < <(common_args "$t")
  if [ "$t" != store_reader ]; then
    "$bin" "${args[@]}" -max_total_time="$secs" -artifact_prefix="$art/" "$@" "${dirs[@]}"
    return
  fi
  # libhdf5 itself hangs, crashes and leaks on some malformed files (docs/fuzzing.md, "HDF5
  # findings"); fuzz in fork mode so that those do not stop the run, then triage every input
  # saved: a failure whose innermost frame is in libhdf5 is reported, one in our code fails.
  local before
  before=$(mktemp)
  find "$art" -type f | sort >"$before"
  ( cd "$FUZZ_DIR" && "$bin" "${args[@]/#-dict=/-dict=$ROOT/}" -max_total_time="$secs" -fork=1 \
      -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -artifact_prefix="$art/" "$@" \
      "${dirs[@]}" ) || true
  local new=()
  mapfile -t new < <(find "$art" -type f | sort | comm -13 "$before" -)
  rm -f "$before"
  [ ${#new[@]} -eq 0 ] && return 0
  FUZZ_DIR=$FUZZ_DIR bash fuzz/triage.sh "$t" "${new[@]}"
}

smoke() {
  local secs=${1:-20} failed=()
  build
  for t in "${TARGETS[@]}"; do
    local log="$FUZZ_DIR/logs/smoke-$t.log"
    mkdir -p "$FUZZ_DIR/logs"
    local start=$(date +%s)
    if run "$t" "$secs" >"$log" 2>&1; then
      echo "fuzz smoke: $t ok ($(summary "$log"), $(( $(date +%s) - start )) s)"
    else
      echo "fuzz smoke: $t FAILED (log: $log)"
      tail -40 "$log"
      failed+=("$t")
    fi
  done
  [ ${#failed[@]} -eq 0 ] || { echo "fuzz smoke: failed: ${failed[*]}"; exit 1; }
}

# "N execs, cov C, ft F, corpus K" from a libFuzzer log (in-process or fork mode).
summary() {
  local log=$1
  local execs cov ft corp
  execs=$(grep -ao 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}' | tail -1)
  [ -n "$execs" ] || execs=$(grep -aoE '^#[0-9]+: cov' "$log" | tail -1 | tr -dc '0-9')
  cov=$(grep -aoE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  ft=$(grep -aoE 'ft: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  corp=$(grep -aoE 'corp: [0-9]+(/[0-9]+[a-zA-Z]*)?' "$log" | tail -1 | awk '{print $2}')
  echo "${execs:-?} execs, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}"
}

campaign() {
  local secs=$1 failed=()
  build
  mkdir -p "$FUZZ_DIR/logs"
  for t in "${TARGETS[@]}"; do
    local log="$FUZZ_DIR/logs/campaign-$t.log"
    local start=$(date +%s)
    if nice -n 19 bash tools/fuzz.sh run "$t" "$secs" >"$log" 2>&1; then
      echo "fuzz campaign: $t ok: $(summary "$log"), $(( $(date +%s) - start )) s"
    else
      echo "fuzz campaign: $t FAILED after $(( $(date +%s) - start )) s: $(summary "$log") (log: $log)"
      failed+=("$t")
    fi
  done
  [ ${#failed[@]} -eq 0 ] || exit 1
}

regress() {
  build
  for t in "${TARGETS[@]}"; do
    local files=()
    [ -d "fuzz/findings/$t" ] && mapfile -t files < <(find "fuzz/findings/$t" -type f ! -name '*.md')
    mapfile -t -O "${#files[@]}" files < <(find "fuzz/corpus/$t" -type f)
    "$FUZZ_DIR/bin/fuzz_$t" -rss_limit_mb=2048 -timeout=10 "${files[@]}" >/dev/null 2>&1 ||
      { echo "fuzz regress: $t FAILED"; "$FUZZ_DIR/bin/fuzz_$t" "${files[@]}" 2>&1 | tail -30; exit 1; }
    echo "fuzz regress: $t ok (${#files[@]} inputs)"
  done
}

case "${1:-}" in
  build) build ;;
  list) printf '%s\n' "${TARGETS[@]}" ;;
  run) [ $# -ge 3 ] || { echo "usage: $0 run TARGET SECONDS [args]" >&2; exit 2; }; shift; run "$@" ;;
  smoke) shift; smoke "$@" ;;
  campaign) [ $# -ge 2 ] || { echo "usage: $0 campaign SECONDS" >&2; exit 2; }; campaign "$2" ;;
  regress) regress ;;
  *) sed -n '2,19p' "$0" >&2; exit 2 ;;
esac
