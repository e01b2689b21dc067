#!/usr/bin/env bash
# Configures (once) and builds attnscope into build/ with Ninja and ccache. Extra arguments are
# passed to the CMake configure step (e.g. -DATTNSCOPE_WERROR=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ] || [ $# -gt 0 ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-Release} "$@"
fi
cmake --build "$BUILD_DIR"
