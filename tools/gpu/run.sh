#!/usr/bin/env bash
# One call on the GPU machine (Ubuntu 24.04, pip PyTorch 2.x with CUDA, Catch2 v3, no Qt, no
# Boost.Program_options library): configure attnscope against the pip LibTorch, build what the
# machine's libraries allow, run the whole test suite including the [gpu] tests, and write logs
# under $OUT (or ./gpu-out when OUT is unset).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-out}
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
{
  echo "date: $(date -u +%FT%TZ)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  python3 -c 'import torch;print("torch", torch.__version__, "cuda", torch.version.cuda)'
  cmake --version | head -1; g++ --version | head -1
} | tee "$OUT/gpu-env.txt"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" \
  "${extra[@]}" 2>&1 | tee "$OUT/gpu-configure.log" || exit 1
cmake --build build-gpu -- -k 0 2>&1 | tail -50 | tee "$OUT/gpu-build.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
ctest --test-dir build-gpu --output-on-failure 2>&1 | tee "$OUT/gpu-ctest.log"
build-gpu/bin/attnscope_tests_model "[gpu]" -s 2>&1 | tail -5 | tee -a "$OUT/gpu-ctest.log"
