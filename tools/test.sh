#!/usr/bin/env bash
# README command 2: install dependencies if missing, build, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/build.sh "$@"
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure
