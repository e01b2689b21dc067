#!/usr/bin/env bash
# One call on the GPU machine (Ubuntu 24.04, pip PyTorch 2.x with CUDA, nvcc, Catch2 v3, no Qt, no
# Boost.Program_options library): configure attnscope against the pip LibTorch, build what the
# machine's libraries allow (core, store, analysis incl. the CUDA kernels, probes, tests, benches),
# run the whole test suite including the [gpu] tests, then (BENCH=1, the default) the GPU
# benchmarks of bench/gpu/README.md. Logs and results go under $OUT (./gpu-out when unset):
# gpu-env.txt, gpu-build.log, gpu-ctest.log, bench.jsonl, bench.log (few files: the device tool
# returns at most 8). DEADLINE (seconds, default 560) skips benchmark steps that would start late.
set -uo pipefail
cd "$(dirname "$0")/../.."
START=$(date +%s)
OUT=${OUT:-$PWD/gpu-out}
BENCH=${BENCH:-1}
DEADLINE=${DEADLINE:-560}
mkdir -p "$OUT"
TORCH_PREFIX=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
extra=()
# ICU headers may be missing there; Debian's libicu-dev/libicu72, unpacked into
# .device-carry/icu (or shipped as .device-carry/icu-tar/icu.tar.xz to fit the transfer limit),
# fill in.
if [ ! -f /usr/include/unicode/uchar.h ] && [ ! -d .device-carry/icu ] && [ -f .device-carry/icu-tar/icu.tar.xz ]; then
  tar xJf .device-carry/icu-tar/icu.tar.xz -C .device-carry
fi
if [ ! -f /usr/include/unicode/uchar.h ] && [ -d .device-carry/icu ]; then
  icu=$PWD/.device-carry/icu/usr
  extra+=(-DICU_INCLUDE_DIR="$icu/include"
          -DICU_UC_LIBRARY_RELEASE="$icu/lib/x86_64-linux-gnu/libicuuc.so.72"
          -DICU_I18N_LIBRARY_RELEASE="$icu/lib/x86_64-linux-gnu/libicui18n.so.72")
  export LD_LIBRARY_PATH="$icu/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
fi
[ -x /usr/local/cuda/bin/nvcc ] && extra+=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
{
  echo "date: $(date -u +%FT%TZ)"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c 'import torch,transformers;print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "transformers", transformers.__version__)'
  nvcc --version 2>/dev/null | tail -1 || /usr/local/cuda/bin/nvcc --version | tail -1
  cmake --version | head -1; g++ --version | head -1
} | tee "$OUT/gpu-env.txt"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" \
  "${extra[@]}" > "$OUT/gpu-build.log" 2>&1 || { tail -30 "$OUT/gpu-build.log"; exit 1; }
cmake --build build-gpu -- -k 0 >> "$OUT/gpu-build.log" 2>&1
build_rc=$?
grep -E "error|FAILED" "$OUT/gpu-build.log" | head -20
echo "build rc=$build_rc after $(( $(date +%s) - START )) s" | tee -a "$OUT/gpu-build.log"
ctest --test-dir build-gpu --output-on-failure > "$OUT/gpu-ctest.log" 2>&1
tail -4 "$OUT/gpu-ctest.log"
build-gpu/bin/attnscope_tests_model "[gpu]" 2>&1 | tail -40 | tee -a "$OUT/gpu-ctest.log"
echo "tests done after $(( $(date +%s) - START )) s"
[ "$BENCH" = 1 ] || exit $build_rc

B=build-gpu/bin/bench_gpu
M1=/tmp/attnscope-llama1b M8=/tmp/attnscope-llama8b
STEPS=${STEPS:-all}  # or a space-separated subset of the step names below
step() {  # step NAME LIMIT_S CMD...: runs CMD unless the deadline is near; JSON lines -> bench.jsonl
  local name=$1 limit=$2; shift 2
  if [ "$STEPS" != all ] && [[ " $STEPS " != *" $name "* ]]; then return; fi
  local left=$(( DEADLINE - ($(date +%s) - START) ))
  if [ "$left" -lt 20 ]; then echo "skip $name (deadline)" | tee -a "$OUT/bench.log"; return; fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "== $name (limit ${limit}s, t=$(( $(date +%s) - START ))s)" >> "$OUT/bench.log"
  PYTHONUNBUFFERED=1 timeout "$limit" "$@" > /tmp/step.out 2>> "$OUT/bench.log"
  echo "rc=$? t=$(( $(date +%s) - START ))s" >> "$OUT/bench.log"
  grep '^{' /tmp/step.out | tee -a "$OUT/bench.jsonl"
  grep -v '^{' /tmp/step.out >> "$OUT/bench.log"
}
export PYTHONWARNINGS=ignore TRANSFORMERS_VERBOSITY=error
step make1b 90 python3 bench/gpu/hf_bench.py make1b $M1
step G1-ours 90 $B forward $M1 1024 4096 16384
step G1-hf 90 python3 bench/gpu/hf_bench.py forward $M1 1024 4096 16384
step make8b 120 python3 bench/gpu/hf_bench.py make8b $M8
step G2 150 $B stats $M8 4096 16384 32768
rm -rf $M8
step G3 150 $B longest $M1 ${G3_LENS:-8192 32768 131072 262144}
step G3-hf 60 python3 bench/gpu/hf_bench.py eager $M1 4096 8192 16384
step G4-ours 120 $B capture $M1 4096 /tmp/attnscope-cap.h5 README.md
rm -f /tmp/attnscope-cap.h5
step G4-hf 120 python3 bench/gpu/hf_bench.py attn $M1 4096 /tmp/attnscope-hf.h5
echo "all done after $(( $(date +%s) - START )) s" | tee -a "$OUT/bench.log"
