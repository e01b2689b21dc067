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

# --- capture ---
printf 'The cat sat on the mat.\nA second prompt, with more words in it.\n' > "$TMP/prompts.txt"
printf '{"id": 5, "text": "jsonl prompt"}\n{"id": 9, "text": "another"}\n' > "$TMP/prompts.jsonl"
expect 0 "capture txt" -- "$A" capture --model "$FIX/tiny-llama" --prompts "$TMP/prompts.txt" --out "$TMP/c.h5" --json
contains '"prompts": 2' "capture count"
expect 0 "capture jsonl, second run, heads/layers" -- "$A" capture --model "$FIX/tiny-llama" --prompts "$TMP/prompts.jsonl" --out "$TMP/c.h5" --run r2 --layers 1 --heads 0-1 -q
expect 0 "capture generate + resid" -- "$A" capture --model "$FIX/tiny-gpt2" --prompt "x y" --out "$TMP/g.h5" --generate 4 --hooks 'blocks.*.hook_resid_post' 'blocks.0.attn.hook_pattern' -q
if command -v h5ls >/dev/null; then
  h5ls -r "$TMP/c.h5" > "$TMP/out" 2>&1; contains "/runs/r2/prompts/000009/blocks/1/attn/hook_pattern" "jsonl id path"
  h5ls -r "$TMP/g.h5" > "$TMP/out" 2>&1; contains "hook_resid_post" "resid stored"
fi
expect 1 "existing run without --force" -- "$A" capture --model "$FIX/tiny-llama" --prompts "$TMP/prompts.txt" --out "$TMP/c.h5" -q
contains "--force" "force hint"
expect 0 "existing run with --force" -- "$A" capture --model "$FIX/tiny-llama" --prompts "$TMP/prompts.txt" --out "$TMP/c.h5" -q --force
expect 1 "capture bad layer" -- "$A" capture --model "$FIX/tiny-llama" --prompt x --out "$TMP/d.h5" --layers 5
[ ! -e "$TMP/d.h5" ] || { echo "FAIL: failed capture left a file"; fails=$((fails+1)); }
expect 1 "capture unknown hook" -- "$A" capture --model "$FIX/tiny-llama" --prompt x --out "$TMP/d.h5" --hooks 'blocks.*.nope'
printf '{"id": 1, "text": "a"}\n{"id": 1, "text": "b"}\n' > "$TMP/dup.jsonl"
expect 1 "duplicate prompt ids" -- "$A" capture --model "$FIX/tiny-llama" --prompts "$TMP/dup.jsonl" --out "$TMP/d.h5"
contains "dup.jsonl:2" "file:line named"
printf 'ok\n\xff bad\n' > "$TMP/bad.txt"
expect 1 "invalid UTF-8 prompts file" -- "$A" capture --model "$FIX/tiny-llama" --prompts "$TMP/bad.txt" --out "$TMP/d.h5"
contains "bad.txt:2" "file:line named"
expect 1 "prompt longer than the context" -- "$A" capture --model "$FIX/tiny-gpt2" --prompt "$(printf 'word %.0s' $(seq 300))" --out "$TMP/d.h5"
contains "--max-tokens" "truncate hint"
expect 0 "--max-tokens truncates" -- "$A" capture --model "$FIX/tiny-gpt2" --prompt "$(printf 'word %.0s' $(seq 300))" --out "$TMP/d.h5" --max-tokens 50 -q
echo '{"x":1}' > "$TMP/notes.txt"
expect 1 "output path that is not an attnscope file" -- "$A" capture --model "$FIX/tiny-llama" --prompt x --out "$TMP/notes.txt"
[ "$(cat "$TMP/notes.txt")" = '{"x":1}' ] || { echo "FAIL: capture clobbered a foreign file"; fails=$((fails+1)); }

# --- analyze ---
expect 0 "analyze live" -- "$A" analyze --model "$FIX/tiny-llama" --prompts "$TMP/prompts.txt"
contains "sink ratio" "analyze table"
expect 0 "analyze from a capture, csv + h5 out" -- "$A" analyze --in "$TMP/c.h5" --run main --csv "$TMP/a.csv" --out "$TMP/a.h5"
[ "$(wc -l < "$TMP/a.csv")" -eq $((1 + 2 * 2 * 4)) ] || { echo "FAIL: csv rows (want header + 2 prompts x 2 layers x 4 heads)"; fails=$((fails+1)); }
expect 0 "analyze json" -- "$A" analyze --model "$FIX/tiny-llama" --prompt "a b c d e f" --json
contains '"percent_outside_layer0"' "json has the sink ratio"
expect 2 "unknown metric" -- "$A" analyze --model "$FIX/tiny-llama" --prompt x --metrics entropy,bogus
contains "bogus" "metric named"
expect 1 "capture lacking layers" -- "$A" analyze --in "$TMP/c.h5" --run r2
contains "Re-capture" "what to do"
expect 1 "analyze input is not HDF5" -- "$A" analyze --in "$TMP/notes.txt"

# --- crash safety: kill -9 in the middle of a capture ---
for i in $(seq 1 300); do echo "Prompt number $i: the quick brown fox jumps over the lazy dog again."; done > "$TMP/many.txt"
"$A" capture --model "$FIX/tiny-llama" --prompts "$TMP/many.txt" --out "$TMP/killed.h5" --hooks '*' -q >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 100); do   # wait until some prompts are flushed, then kill -9
  sleep 0.1
  done_n=$("$A" inspect "$TMP/killed.h5" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["n_prompts_done"])' 2>/dev/null || echo 0)
  [ "${done_n:-0}" -ge 3 ] && break
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
n=$((n+1))
if "$A" inspect "$TMP/killed.h5" --json > "$TMP/out" 2>&1 && python3 - "$TMP/out" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
r = j["runs"][0]
assert r["complete"] is False, "run must be marked incomplete"
assert 3 <= len(r["prompts"]) < 300, r["prompts"]
PY
then :; else echo "FAIL: killed capture not readable/incomplete"; sed 's/^/    /' "$TMP/out" | head; fails=$((fails+1)); fi
expect 0 "analyze reads the finished prompts of a killed capture" -- "$A" analyze --in "$TMP/killed.h5" --metrics entropy,sink --json
expect 0 "inspect text" -- "$A" inspect "$TMP/killed.h5" && contains "INCOMPLETE" "incomplete shown"
expect 1 "inspect non-HDF5" -- "$A" inspect "$TMP/notes.txt"
expect 1 "capture over --max-bytes" -- "$A" capture --model "$FIX/tiny-llama" --prompts "$TMP/many.txt" --out "$TMP/big.h5" --max-bytes 100000
contains "analyze" "what to do"
[ ! -e "$TMP/big.h5" ] || { echo "FAIL: refused capture left a file"; fails=$((fails+1)); }

# --- interventions and eval ---
S=$ROOT/samples/models/tinydeb-llama
head -n 12 "$ROOT/samples/tasks/cloze.jsonl" > "$TMP/cloze.jsonl"
expect 0 "eval baseline" -- "$A" eval --model "$S" --task "$TMP/cloze.jsonl" --split all --bootstrap 200 && contains "95% CI" "eval table"
expect 0 "eval with act, json, out file" -- "$A" eval --model "$S" --task "$TMP/cloze.jsonl" --split all --method act:beta=0.4 --json --out "$TMP/ev.json" --items
contains '"difference"' "eval json has the difference"
python3 - "$TMP/ev.json" <<'PY' || { echo "FAIL: eval --out report"; fails=$((fails+1)); }
import json, sys
j = json.load(open(sys.argv[1]))
assert j["items"] == 12 and len(j["per_item"]) == 12, j["items"]
assert j["interventions"]["methods"][0]["method"] == "act"
for k in ("baseline", "method", "difference"):
    lo, hi = j[k]["ci95"]
    assert lo <= j[k]["value"] <= hi, (k, j[k])
assert j["stats"]["act"]["rows_calibrated"] > 0
PY
expect 0 "two methods with qualified params" -- "$A" eval --model "$S" --task "$TMP/cloze.jsonl" --split all --bootstrap 0 --method act --method temperature --param act.beta=0.5 --param temperature.t=2 --param temperature.heads=3.*
expect 1 "unqualified param with two methods" -- "$A" eval --model "$S" --task "$TMP/cloze.jsonl" --split all --method act --method temperature --param beta=0.5
contains "name the method" "what to do"
expect 1 "unknown method parameter" -- "$A" eval --model "$S" --task "$TMP/cloze.jsonl" --split all --method act:betta=1 && contains "valid: beta" "valid list"
expect 1 "unknown method" -- "$A" eval --model "$S" --task "$TMP/cloze.jsonl" --split all --method act2 && contains "valid: act" "valid methods"
expect 1 "head outside the model" -- "$A" eval --model "$S" --task "$TMP/cloze.jsonl" --split all --method softpag:heads=9.0 && contains "8 layers" "sizes named"
expect 1 "missing task" -- "$A" eval --model "$S" --task "$TMP/none.jsonl" && contains "none.jsonl" "file named"
printf '{"context": "a", "options": ["b", "c"], "answer": 0}\n{"context": "a", "options": ["b"], "answer": 0}\n' > "$TMP/bad-task.jsonl"
expect 1 "bad task line" -- "$A" eval --model "$S" --task "$TMP/bad-task.jsonl" && contains "bad-task.jsonl:2" "file:line named"
expect 1 "split without items" -- "$A" eval --model "$S" --task "$TMP/cloze.jsonl" --split train && contains "splits: dev" "splits listed"
expect 0 "eval --help-methods" -- "$A" eval --help-methods && contains "softpag" "methods listed"
expect 0 "head search" -- "$A" head-search --model "$S" --task "$TMP/cloze.jsonl" --split all --limit 6 --layers 2 --heads 0-1 --out "$TMP/heads.json" --json
contains '"candidates"' "head search json"
cp "$TMP/heads.json" "$TMP/heads-before.json"
expect 0 "head search is deterministic" -- "$A" head-search --model "$S" --task "$TMP/cloze.jsonl" --split all --limit 6 --layers 2 --heads 0-1 --out "$TMP/heads.json"
python3 - "$TMP/heads.json" "$TMP/heads-before.json" <<'PY' || { echo "FAIL: head search differs between runs"; fails=$((fails+1)); }
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["candidates"] == b["candidates"] and a["heads"] == b["heads"]
PY
python3 - "$TMP/heads.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); j["heads"] = [[2, 0], [2, 1]]; json.dump(j, open(sys.argv[1], "w"))
PY
expect 0 "eval --act-heads" -- "$A" eval --model "$S" --task "$TMP/cloze.jsonl" --split all --bootstrap 0 --act-heads "$TMP/heads.json" --json
python3 - "$TMP/out" <<'PY' || { echo "FAIL: --act-heads list not used"; fails=$((fails+1)); }
import json, sys
j = json.load(open(sys.argv[1]))
assert j["interventions"]["methods"][0]["params"]["heads"] == [[2, 0], [2, 1]], j["interventions"]
PY
expect 1 "--act-heads for another model" -- "$A" eval --model "$FIX/tiny-llama" --task "$TMP/cloze.jsonl" --split all --act-heads "$TMP/heads.json"
contains "was made for a model" "mismatch explained"
echo '{"heads": ' > "$TMP/broken-heads.json"
expect 1 "broken head list" -- "$A" eval --model "$S" --task "$TMP/cloze.jsonl" --split all --act-heads "$TMP/broken-heads.json" && contains "broken-heads.json" "file named"
expect 0 "generate with act, compare" -- "$A" generate --model "$S" --prompt "In the beginning" -n 6 --method act --compare --json
contains '"completion_without"' "both continuations"
expect 0 "generate with softpag guidance" -- "$A" generate --model "$S" --prompt "In the beginning" -n 6 --method softpag:heads=2.*,s=1 --json
expect 0 "capture before/after runs" -- "$A" capture --model "$S" --prompt "And God said, Let there be light." --out "$TMP/ab.h5" --run act --baseline-run baseline --method act:tau=0.05 --layers 2-3 -q
expect 0 "both runs stored" -- "$A" inspect "$TMP/ab.h5" --json
python3 - "$TMP/out" <<'PY' || { echo "FAIL: before/after capture"; fails=$((fails+1)); }
import json, sys
j = json.load(open(sys.argv[1]))
runs = {r["name"]: r for r in j["runs"]}
assert set(runs) == {"act", "baseline"}, runs.keys()
assert all(r["complete"] for r in runs.values())
assert runs["act"]["intervention"]["methods"][0]["method"] == "act", runs["act"]["intervention"]
assert runs["baseline"]["intervention"] == {}, runs["baseline"]["intervention"]
PY
expect 2 "guidance refused by capture" -- "$A" capture --model "$S" --prompt "x y" --out "$TMP/guided.h5" --method softpag:heads=2.*,s=1
[ ! -e "$TMP/guided.h5" ] || { echo "FAIL: refused capture left a file"; fails=$((fails+1)); }
expect 2 "--param without --method" -- "$A" generate --model "$S" --prompt "x" --param beta=1

echo "cli tests: $((n - fails))/$n passed"
[ "$fails" -eq 0 ]
