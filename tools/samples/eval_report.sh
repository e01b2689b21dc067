#!/usr/bin/env bash
# The numbers behind docs/interventions.md: every intervention on the bundled sample models,
# evaluated on the held-out test split of samples/tasks/cloze.jsonl (and perplexity on
# samples/tasks/ppl.jsonl), with ACT's head search on the dev split first.
#
#   tools/samples/eval_report.sh [OUTDIR]     (default OUTDIR: docs/results)
#
# Environment: TEST_LIMIT (default 300 test items), DEV_LIMIT (default 100 dev items for the
# head search), MODELS (default "tinydeb-llama tinydeb-gpt2"), ATTNSCOPE (the binary).
# Writes OUTDIR/<model>/{act-heads.json, <method>.json} and prints a markdown table per model
# (tools/samples/eval_table.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-docs/results}
BIN=${ATTNSCOPE:-build/bin/attnscope}
TEST_LIMIT=${TEST_LIMIT:-300}
DEV_LIMIT=${DEV_LIMIT:-100}
TASK=samples/tasks/cloze.jsonl
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

for model in ${MODELS:-tinydeb-llama tinydeb-gpt2}; do
  dir=samples/models/$model
  o=$OUT/$model
  mkdir -p "$o"
  echo "== $model: ACT head search on $DEV_LIMIT dev items" >&2
  "$BIN" head-search --model "$dir" --task $TASK --split dev --limit "$DEV_LIMIT" --seed 1 \
    --method act:beta=0.4,tau=0.1 --out "$o/act-heads.json" -q
  run() {  # name, then eval options
    local name=$1; shift
    echo "== $model: $name" >&2
    "$BIN" eval --model "$dir" --task $TASK --split test --limit "$TEST_LIMIT" --seed 0 -q --out "$o/$name.json" "$@" >/dev/null
  }
  run baseline
  run act-searched --act-heads "$o/act-heads.json"
  run act-all --method act:beta=0.4,tau=0.1
  run var --method var:massive_abs=10,massive_factor=20
  run softpag-guidance --method softpag:heads=2-5.*,u=1,s=0.5
  run temperature --method temperature:t=0.8
  run ablate-mean --method ablate:heads=2.*,mode=mean
  echo "== $model: perplexity with ACT (searched heads)" >&2
  "$BIN" eval --model "$dir" --task samples/tasks/ppl.jsonl --split test --limit 100 -q \
    --act-heads "$o/act-heads.json" --out "$o/ppl-act-searched.json" >/dev/null
done
python3 tools/samples/eval_table.py "$OUT"
