#!/usr/bin/env bash
# Builds the torch-free unit tests (attnscope_tests_unit: base, format, text, store) with clang
# and -fsanitize=address,undefined and runs them: any ASan, UBSan or LeakSanitizer report fails.
# Shares the fuzz build folder (fuzz/CMakeLists.txt; $FUZZ_DIR, default build-fuzz), since both
# use the same instrumented libraries. Extra arguments go to the test binary (Catch2 filters).
#
# The LibTorch suite (attnscope_tests_model) is not run here: Debian's libtorch is not built
# with ASan (its memory errors would go unseen) and an instrumented build of our LibTorch code
# has not been tried yet (docs/fuzzing.md, "Sanitizers and LibTorch").
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_DIR=${FUZZ_DIR:-build-fuzz}
if [ ! -f "$FUZZ_DIR/build.ninja" ]; then
  cmake -S fuzz -B "$FUZZ_DIR" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
fi
cmake --build "$FUZZ_DIR" --target attnscope_tests_unit
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
start=$(date +%s)
"$FUZZ_DIR/bin/attnscope_tests_unit" "$@"
echo "sanitize: unit tests clean under ASan+UBSan in $(( $(date +%s) - start )) s"
