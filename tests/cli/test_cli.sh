#!/usr/bin/env bash
# End-to-end tests of the attnscope CLI: real processes, exit codes and messages.
# Usage: ATTNSCOPE=build/bin/attnscope bash tests/cli/test_cli.sh
set -uo pipefail
A=${ATTNSCOPE:?set ATTNSCOPE to the attnscope binary}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FIX=$ROOT/tests/fixtures/hf
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0; n=0

# expect CODE DESCRIPTION -- command...   (stdout+stderr captured in $TMP/out)
expect() {
  local code=$1 desc=$2; shift 3
  n=$((n+1))
  "$@" >"$TMP/out" 2>&1; local got=$?
  if [ "$got" -ne "$code" ]; then
    echo "FAIL: $desc: exit $got, expected $code"; sed 's/^/    /' "$TMP/out" | head -20; fails=$((fails+1))
    return 1
  fi
  return 0
}
# contains TEXT DESCRIPTION
contains() {
  if ! grep -qF -- "$1" "$TMP/out"; then
    echo "FAIL: $2: output lacks '$1'"; sed 's/^/    /' "$TMP/out" | head -20; fails=$((fails+1))
  fi
}

for m in tiny-gpt2 tiny-llama tiny-qwen2 tiny-mistral; do
  expect 0 "info $m" -- "$A" info --model "$FIX/$m" --json && contains '"hook_points"' "info $m json"
  expect 0 "tokenize $m" -- "$A" tokenize --model "$FIX/$m" --text "Hello, world!" --json
  contains '"ids"' "tokenize $m"
  expect 0 "generate $m" -- "$A" generate --model "$FIX/$m" --prompt "The cat" -n 5 --json
  contains '"new_ids"' "generate $m"
done
expect 0 "info text" -- "$A" info --model "$FIX/tiny-llama" && contains "blocks.{0..1}.attn.hook_pattern" "info lists hooks"
expect 0 "sampled generation" -- "$A" generate --model "$FIX/tiny-llama" --prompt "a" -n 4 --sample --seed 3 --top-k 5

# tokenize --file: one JSON line per input line
printf 'first line\nsecond line\n' > "$TMP/lines.txt"
expect 0 "tokenize --file" -- "$A" tokenize --model "$FIX/tiny-llama" --file "$TMP/lines.txt"
[ "$(wc -l < "$TMP/out")" -eq 2 ] || { echo "FAIL: tokenize --file should print 2 lines"; fails=$((fails+1)); }

# --- bad input: nonzero exit, message naming the file/field and what to do ---
expect 2 "no command" -- "$A"
expect 2 "unknown command" -- "$A" frobnicate
expect 2 "unknown option" -- "$A" info --frob && contains "frob" "unknown option named"
expect 2 "tokenize needs text or file" -- "$A" tokenize --model "$FIX/tiny-llama"
expect 1 "missing model dir" -- "$A" info --model "$TMP/nope" && contains "$TMP/nope" "missing dir named"

mkdir -p "$TMP/bert" && echo '{"model_type": "bert"}' > "$TMP/bert/config.json"
expect 1 "unsupported arch" -- "$A" info --model "$TMP/bert" && contains "supported" "supported list"

mkdir -p "$TMP/badjson" && echo '{"model_type": "llama", ' > "$TMP/badjson/config.json"
expect 1 "malformed config.json" -- "$A" info --model "$TMP/badjson" && contains "config.json" "file named"

mkdir -p "$TMP/pickle" && cp "$FIX/tiny-llama/config.json" "$TMP/pickle/" && echo junk > "$TMP/pickle/pytorch_model.bin"
expect 1 "pickle refused" -- "$A" info --model "$TMP/pickle" && contains "safetensors" "conversion hint"

mkdir -p "$TMP/trunc" && cp "$FIX/tiny-llama/"*.json "$TMP/trunc/"
head -c 1000 "$FIX/tiny-llama/model.safetensors" > "$TMP/trunc/model.safetensors"
expect 1 "truncated safetensors" -- "$A" info --model "$TMP/trunc" && contains "model.safetensors" "file named"

printf 'ok line\n\xff\xfe bad\n' > "$TMP/bad-utf8.txt"
expect 1 "invalid UTF-8 in --file" -- "$A" tokenize --model "$FIX/tiny-llama" --file "$TMP/bad-utf8.txt"
contains "bad-utf8.txt:2" "file and line named"
expect 1 "invalid UTF-8 in --text" -- "$A" tokenize --model "$FIX/tiny-llama" --text $'\xc3\x28'

expect 1 "prompt longer than the context" -- "$A" generate --model "$FIX/tiny-gpt2" --prompt "x" -n 100000
contains "context" "context named"
expect 1 "bad dtype" -- "$A" generate --model "$FIX/tiny-llama" --prompt "x" --dtype int3
expect 1 "cuda without a GPU build" -- "$A" info --model "$FIX/tiny-llama" --device cuda:7

echo "cli tests: $((n - fails))/$n passed"
[ "$fails" -eq 0 ]
