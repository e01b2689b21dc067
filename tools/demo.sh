#!/usr/bin/env bash
# README command 1: install dependencies, build, and run the main job on the bundled default
# model: describe it, tokenize a sentence, generate a continuation, capture attention into HDF5
# and analyze attention metrics over the sample prompts, and evaluate ACT on a sample task.
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
echo; echo "== attnscope capture (attention of two prompts into demo.h5)"
printf 'It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.\nIn the beginning God created the heaven and the earth.\n' > build/demo-prompts.txt
$A capture --prompts build/demo-prompts.txt --out build/demo.h5 --force
$A inspect build/demo.h5
echo; echo "== attnscope analyze (sinks, entropy, head classes, preplan/anchor tokens of the sample prompts)"
$A analyze --prompts samples/prompts/prompts.txt
echo; echo "== attnscope eval (cloze task, 100 held-out items, with and without ACT)"
$A eval --task samples/tasks/cloze.jsonl --split test --limit 100 --method act
