#!/usr/bin/env python3
"""Build the sample evaluation tasks in samples/tasks/ from the sample models' held-out text.

    python3 tools/samples/make_tasks.py [--corpus build-corpus] [--out samples/tasks] [--seed 0]

Needs the corpus made by tools/samples/extract_corpus.sh (its valid.txt and test.txt were never
trained on: dev items come from valid.txt, test items from test.txt). Standard library only;
deterministic for a given corpus and seed.

Writes
  cloze.jsonl  multiple-choice cloze: a passage and the start of the next sentence; the options are
               the true next word and three distractors of similar corpus frequency that do not
               occur in the context. "focus" marks the passage before the blanked sentence (the
               target set of VAR on text). 600 dev + 600 test items.
  ppl.jsonl    perplexity passages (one paragraph, 200-700 bytes). 200 dev + 200 test.
"""
import argparse
import bisect
import collections
import json
import random
import re
from pathlib import Path

WORD = re.compile(r"^[a-z]{4,14}$")
SENT = re.compile(r"(?<=[.!?;:])\s+")


def documents(path):
    doc = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip() == "<|endoftext|>":
            if doc:
                yield "\n".join(doc)
            doc = []
        else:
            doc.append(line)
    if doc:
        yield "\n".join(doc)


def paragraphs(doc):
    for para in re.split(r"\n\s*\n", doc):
        text = " ".join(para.split())
        if text:
            yield text


def word_freq(docs):
    c = collections.Counter()
    for d in docs:
        for w in re.findall(r"[A-Za-z]+", d):
            if WORD.match(w):
                c[w] += 1
    return c


def cloze_items(docs, split, n_items, rng, per_doc=8):
    freq = word_freq(docs)
    vocab = [w for w, k in freq.most_common() if k >= 2]
    rank = {w: i for i, w in enumerate(vocab)}
    cands = []
    for di, doc in enumerate(docs):
        found = []
        for para in paragraphs(doc):
            sents = [s for s in SENT.split(para) if s]
            for k in range(1, len(sents)):
                words = sents[k].split(" ")
                passage = " ".join(sents[max(0, k - 3):k])
                if len(passage) < 60 or len(passage) > 600:
                    continue
                for i in range(3, len(words)):
                    w = words[i]
                    if WORD.match(w) and w in rank:
                        found.append((di, passage, " ".join(words[:i]), w))
        rng.shuffle(found)
        cands.extend(found[:per_doc])
    rng.shuffle(cands)
    items = []
    for di, passage, prefix, answer in cands:
        context = passage + " " + prefix
        ctx_words = set(re.findall(r"[A-Za-z]+", context.lower()))
        r = rank[answer]
        lo, hi = max(0, r // 2 - 5), min(len(vocab), r * 2 + 10)
        pool = [w for w in vocab[lo:hi] if w != answer and w not in ctx_words and abs(len(w) - len(answer)) <= 3]
        if len(pool) < 3:
            continue
        options = [answer] + rng.sample(pool, 3)
        rng.shuffle(options)
        items.append({
            "id": f"{split}-{len(items):04d}",
            "split": split,
            "context": context,
            "options": [" " + o for o in options],
            "answer": options.index(answer),
            "focus": [0, len(passage.encode("utf-8"))],
            "doc": di,
        })
        if len(items) == n_items:
            break
    if len(items) < n_items:
        raise SystemExit(f"only {len(items)} cloze items for {split}; need {n_items}")
    return items


def ppl_items(docs, split, n_items, rng):
    paras = [p for d in docs for p in paragraphs(d) if 200 <= len(p.encode("utf-8")) <= 700]
    rng.shuffle(paras)
    if len(paras) < n_items:
        raise SystemExit(f"only {len(paras)} passages for {split}")
    return [{"id": f"{split}-{i:04d}", "split": split, "text": t} for i, t in enumerate(paras[:n_items])]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    repo = Path(__file__).resolve().parents[2]
    ap.add_argument("--corpus", default=repo / "build-corpus", type=Path)
    ap.add_argument("--out", default=repo / "samples/tasks", type=Path)
    ap.add_argument("--seed", default=0, type=int)
    ap.add_argument("--cloze", default=600, type=int, help="cloze items per split")
    ap.add_argument("--ppl", default=200, type=int, help="perplexity passages per split")
    a = ap.parse_args()
    for f in ("valid.txt", "test.txt"):
        if not (a.corpus / f).exists():
            raise SystemExit(f"{a.corpus / f} missing: run tools/samples/extract_corpus.sh first")
    a.out.mkdir(parents=True, exist_ok=True)
    cloze, ppl = [], []
    for split, name in (("dev", "valid.txt"), ("test", "test.txt")):
        docs = list(documents(a.corpus / name))
        rng = random.Random(f"{a.seed}-{split}")
        cloze += cloze_items(docs, split, a.cloze, rng)
        ppl += ppl_items(docs, split, a.ppl, rng)
    for fname, items in (("cloze.jsonl", cloze), ("ppl.jsonl", ppl)):
        with open(a.out / fname, "w", encoding="utf-8") as f:
            for it in items:
                f.write(json.dumps(it, ensure_ascii=False) + "\n")
        print(f"{a.out / fname}: {len(items)} items")


if __name__ == "__main__":
    main()
