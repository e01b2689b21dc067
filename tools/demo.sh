#!/usr/bin/env bash
# README command 1: install dependencies, build, and run the main job on the bundled default
# model: describe it, tokenize a sentence, and generate a continuation.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/build.sh
A=build/bin/attnscope
echo; echo "== attnscope info (bundled default model)"
$A info
echo; echo "== attnscope tokenize"
$A tokenize --text "It is a truth universally acknowledged"
echo; echo "== attnscope generate"
$A generate --prompt "It is a truth universally acknowledged" --max-new-tokens 24
