#!/usr/bin/env python3
"""Generate Hugging Face reference fixtures for attnscope's C++ re-implementation.

attnscope reimplements GPT-2 and Llama-family forward passes and tokenizers in C++ (LibTorch) and must
match Hugging Face exactly.  This script builds everything it needs to prove that, *locally* and
deterministically (no network, no model hub):

1. Tokenizers, trained on a small embedded corpus (``CORPUS`` below):
   * ``tiny-gpt2``   GPT-2 style byte-level BPE, ``<|endoftext|>`` inside the model vocab (last id);
   * ``tiny-llama``  Llama-3 style: Split(regex) + ByteLevel, ``ignore_merges``, BOS template,
                     special ``<|begin_of_text|>``/``<|end_of_text|>`` and a NON-special ``<think>``;
   * ``tiny-qwen2``  Qwen2 style: NFC normalizer, Split(regex, single digits) + ByteLevel, no BOS;
   * ``tiny-mistral`` a real sentencepiece BPE model (Llama-2 settings: byte fallback, split digits,
                     dummy prefix, identity normalization) converted to tokenizer.json by transformers;
   * ``tok-spm-legacy``  the same sentencepiece vocab written in the *legacy* Llama-2/Mistral
                     tokenizer.json form (normalizer Prepend+Replace, string merges "a b");
   * ``tok-metaspace``   the same vocab in Metaspace form (pre-tokenizer + decoder Metaspace,
                     prepend_scheme "first", split false).
   ``DIR/hf/tokenizer_reference.json`` holds, for every tokenizer and every text of
   ``tools/gpu/tokenizer_texts.json``: ids with/without special tokens, token strings and decodes.

2. Tiny random-init models (float32, safetensors, eager attention): tiny-gpt2, tiny-llama (GQA, llama3
   rope scaling), tiny-llama-linear (linear rope, tied embeddings, q/k/v/o biases, head_dim != d/H),
   tiny-qwen2 (qkv bias, tied, config vocab > tokenizer vocab), tiny-mistral (sliding window 8); plus
   tiny-llama-bf16, tiny-llama-sharded and tiny-llama-v4config (transformers 4.x rope keys) variants.

3. ``reference.safetensors`` + ``reference.json`` per model: logits, all hidden states, all attention
   probabilities for 3 prompts, a left-padded batch and greedy generation.

Every fixture runs inside its own try/except (full traceback printed, then the next one runs); the
exit status is non-zero if any failed.  Usage (one command)::

    python3 tools/gpu/make_fixtures.py --out DIR

Written for: Python 3.12, torch 2.11, transformers 5.x (5.17), tokenizers 0.23, sentencepiece 0.2,
safetensors 0.8 (also tries transformers 4.x code paths where the API differs).  CPU only.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import inspect
import json
import os
import shutil
import struct
import sys
import tempfile
import traceback
from pathlib import Path

# Never touch the network: everything is created locally.  Must be set before transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU only, float32 everywhere

HERE = Path(__file__).resolve().parent
TEXTS_FILE = HERE / "tokenizer_texts.json"

SEED = 1234
SIZE_LIMIT_BYTES = 10_000_000  # the whole DIR/hf tree must stay under 10 MB
INIT_STD = 0.05  # initializer_range of every model (default init of linear/embedding weights)
QK_STD = 0.15  # std of q/k projection weights: makes attention clearly peaked, not near-uniform
NORM_JITTER = 0.1  # norm weights = 1 + NORM_JITTER * randn, norm/linear biases = NORM_JITTER * randn
NUM_NEW_TOKENS = 8  # greedy generation length
PROMPT_TARGETS = (5, 20, 40)  # approximate prompt lengths in tokens (special tokens included)

LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SPIECE = "\u2581"  # "▁"

# Characters used by the tokenizer test texts to exercise byte fallback: they must NOT be in CORPUS.
UNSEEN_CHARS = "\u16a0\u16c7\u16bb\u2813\u2811\u2807\u2815\U00010330\U00010331\ua66e"

# Training corpus (~6 KB): English prose, dialogue with contractions, numbers, Python, C++, JSON and a
# little Chinese, Japanese, Russian, Arabic, accented Latin and emoji.  Korean and Hebrew are left out
# on purpose so that the sentencepiece tokenizer has to use byte fallback for them.
CORPUS = """\
The quick brown fox jumps over the lazy dog near the river bank. The dog does not move; it only
watches the fox and the birds in the old oak tree. Later that evening the farmer counted 12 sheep,
3 goats and 1,024 chickens, which took him about 45 minutes.

Attention lets every token look back at the tokens before it. Each head computes queries, keys and
values, scales the dot products by the square root of the head dimension, applies a causal mask and
normalises the scores with a softmax. Some heads attend to the previous token, some to the first
token, and induction heads copy what followed an earlier occurrence of the current token.

"I'm not sure," she said. "You're right that it's late, but we'll finish tonight. They've already
left, and I'd rather not wait until tomorrow." He laughed: "Don't worry, we're almost done. It'll be
fine, and you'll see that the results aren't as bad as you think."

In 2017 the transformer paper used 6 layers, 8 heads and a model width of 512. By 2024 models had
32, 80 or even 126 layers, context windows of 8192 or 131072 tokens, and rope theta values such as
10000.0, 500000.0 and 1000000.0. The learning rate was 3e-4, the epsilon 1e-5, and pi is 3.14159.

def softmax(x):
    m = max(x)
    e = [math.exp(v - m) for v in x]
    s = sum(e)
    return [v / s for v in e]


class Attention(nn.Module):
    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.q_proj = nn.Linear(d_model, d_model, bias=False)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x):
        # scores: [batch, heads, query, key]
        return self.q_proj(x) @ self.k_proj(x).transpose(-1, -2)

#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
    std::vector<float> scores = {0.1f, 0.7f, 0.2f};
    for (size_t i = 0; i < scores.size(); ++i) {
        if (scores[i] > 0.5f && argc > 1) {
            std::printf("head %zu is peaked\\n", i);
        }
    }
    return 0;
}

{"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32, "rope_theta": 500000.0}

## Notes
- The tokenizer must match the reference implementation byte for byte.
- Whitespace matters:  two spaces,   three spaces, and a tab\there.
- Résumé, café, naïve, façade, Ångström, São Paulo, Zürich, Kraków and Dvořák are all words.

我们今天去公园散步，天气很好。注意力机制让模型关注重要的词。
東京は日本の首都です。ひらがなとカタカナを使います。モデルはテキストを読みます。
Привет, мир! Это небольшой тест для токенизатора. Модель читает текст.
مرحبا بالعالم، هذا نص عربي قصير للاختبار.
I love pizza 🍕 and coffee ☕, and I wave 👋 to my friends 😀.

The end of the story is simple: the fox went home, the dog fell asleep, and the farmer wrote the
numbers 7, 42, 365 and 2048 into his notebook before turning off the light.

When we compare two implementations of the same model, we feed both the same tokens and look at the
logits, the hidden states after every layer and the attention probabilities of every head. If the
first layer already differs, the embedding or the norm is wrong; if only later layers differ, the
rotary embedding, the grouped-query attention or the sliding window is the usual suspect. A tolerance
of 1e-5 is reasonable for float32, while bfloat16 weights need a looser bound such as 1e-2.

The weather report said that Monday would be sunny with 21 degrees, Tuesday cloudy with 18, and
Wednesday rainy with only 12. Everyone at the station wanted to know whether the train at 08:45 would
leave on time; the conductor said it wouldn't, because the line between the two cities was closed.

import json
import math


def load_config(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    if "rope_parameters" in config:
        theta = config["rope_parameters"].get("rope_theta", 10000.0)
    else:
        theta = config.get("rope_theta", 10000.0)
    return {"theta": theta, "layers": config["num_hidden_layers"]}


for layer in range(32):
    for head in range(8):
        print(f"layer {layer:02d} head {head}: score={math.sqrt(layer + head):.3f}")

template <typename T>
T dot(const std::vector<T>& a, const std::vector<T>& b) {
    T acc{};
    for (size_t i = 0; i < a.size(); ++i) acc += a[i] * b[i];
    return acc;
}

| model | layers | heads | kv heads | window |
|-------|--------|-------|----------|--------|
| gpt2  | 12     | 12    | 12       | none   |
| llama | 32     | 32    | 8        | none   |

$ cmake -S . -B build -G Ninja && cmake --build build -j 8 && ./build/attnscope --help

Il était une fois un petit renard qui habitait près d'une rivière. Er wohnte dort mit seiner Familie.
Hoy es lunes y mañana será martes; la reunión empieza a las diez.
"""

# Prompt sources for the model references (three different styles; each prompt is the longest word
# prefix of its source that tokenizes to at most PROMPT_TARGETS[i] tokens).
PROMPT_SOURCES = (
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "def softmax(x):\n    m = max(x)\n    return [math.exp(v - m) for v in x]  # don't change it, "
    "it's used by 32 heads and 2048 tokens in 2024",
    "Attention lets every token look back at the tokens before it. Each head computes queries, keys "
    "and values, scales the dot products by the square root of the head dimension, applies a causal "
    "mask and normalises the scores with a softmax. Some heads attend to the previous token, some to "
    "the first token, and induction heads copy what followed an earlier occurrence of the current "
    "token. The farmer counted 12 sheep and 1,024 chickens.",
)

# Model fixtures: name -> (architecture, tokenizer folder, family).
MODEL_NAMES = ("tiny-gpt2", "tiny-llama", "tiny-llama-linear", "tiny-qwen2", "tiny-mistral")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
    "chat_template.jinja",
)


# ----------------------------------------------------------------------------------------------------
# Small utilities
# ----------------------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(msg, flush=True)


def jsonable(obj):
    """Strict JSON: non-finite floats (nan/inf) become strings, tuples become lists."""
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


def write_json(path: Path, obj, compact: bool = False) -> None:
    """UTF-8 JSON; compact=True for files dominated by long id lists (keeps the output small)."""
    obj = jsonable(obj)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        if compact:
            json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        else:
            json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


def read_json(path: Path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def safetensors_header(path: Path) -> dict:
    """Read a .safetensors header (tensor name -> {dtype, shape, offsets}) without any framework."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


def copy_tokenizer_files(src: Path, dst: Path) -> list[str]:
    dst.mkdir(parents=True, exist_ok=True)
    copied = []
    for fn in TOKENIZER_FILES:
        if (src / fn).is_file():
            shutil.copy2(src / fn, dst / fn)
            copied.append(fn)
    return copied


def versions() -> dict:
    out = {"python": sys.version.split()[0]}
    for mod in ("torch", "transformers", "tokenizers", "sentencepiece", "safetensors", "numpy", "huggingface_hub"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001 - report whatever is missing
            out[mod] = f"unavailable ({type(e).__name__}: {e})"
    return out


def corpus_chunks() -> list[str]:
    """Paragraph-sized training chunks that keep their newlines (so byte-level BPE learns 'Ċ', indents)."""
    parts = CORPUS.split("\n\n")
    return [p + "\n\n" for p in parts if p.strip()]


class Context:
    """Shared state between fixture steps."""

    def __init__(self, out: Path):
        self.out = out
        self.hf = out / "hf"
        self.work = Path(tempfile.mkdtemp(prefix="attnscope_fixtures_"))
        self.texts: list[str] = read_json(TEXTS_FILE)
        self.status: dict[str, str] = {}
        self.notes: dict[str, list[str]] = {}  # fixture name -> notes (merged into its reference.json)
        self.spm_model: Path | None = None
        self.spm_info: dict = {}
        self.versions = versions()

    def note(self, key: str, msg: str) -> None:
        log(f"  note [{key}]: {msg}")
        self.notes.setdefault(key, []).append(msg)


def run_step(ctx: Context, name: str, fn, requires: tuple[str, ...] = ()) -> None:
    """Run one fixture; print a full traceback on failure and carry on with the next one."""
    missing = [r for r in requires if ctx.status.get(r) != "ok"]
    if missing:
        ctx.status[name] = f"skipped: requires {', '.join(missing)}"
        log(f"=== {name}: SKIPPED (requires {', '.join(missing)})")
        return
    log(f"=== {name}")
    try:
        fn(ctx)
        ctx.status[name] = "ok"
        log(f"=== {name}: ok")
    except Exception as e:  # noqa: BLE001 - one failing fixture must not stop the others
        traceback.print_exc()
        sys.stdout.flush()
        ctx.status[name] = f"FAILED: {type(e).__name__}: {e}"
        log(f"=== {name}: FAILED ({type(e).__name__}: {e})")


# ----------------------------------------------------------------------------------------------------
# tokenizer.json building blocks (written as JSON so the files look exactly like the real ones)
# ----------------------------------------------------------------------------------------------------


def bytelevel(add_prefix_space: bool, trim_offsets: bool, use_regex: bool) -> dict:
    return {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": trim_offsets,
            "use_regex": use_regex}


def split_regex(pattern: str) -> dict:
    return {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False}


def template_bos(bos: str, bos_id: int) -> dict:
    """TemplateProcessing single="BOS $A", pair="BOS $A BOS:1 $B:1" (as Llama-2 and Llama-3 ship)."""
    return {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [
            {"SpecialToken": {"id": bos, "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": bos, "type_id": 1}},
            {"Sequence": {"id": "B", "type_id": 1}},
        ],
        "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}},
    }


def added_token(tid: int, content: str, special: bool, normalized: bool) -> dict:
    return {
        "id": tid,
        "content": content,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": normalized,
        "special": special,
    }


def train_bytelevel_bpe(vocab_size: int, pre_tokenizer, normalizer=None) -> dict:
    """Train a byte-level BPE on CORPUS; returns the tokenizer JSON (dict) with no added tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus_chunks(), trainer=trainer)
    d = json.loads(tok.to_str())
    n = len(d["model"]["vocab"])
    if sorted(d["model"]["vocab"].values()) != list(range(n)):
        raise RuntimeError("trained vocab ids are not contiguous")
    return d


def finish_tokenizer(d: dict, *, normalizer, pre_tokenizer, post_processor, decoder, added: list[dict]):
    """Replace the pipeline sections of a trained tokenizer JSON and load it (tokenizers.Tokenizer)."""
    from tokenizers import Tokenizer

    d = copy.deepcopy(d)
    d["normalizer"] = normalizer
    d["pre_tokenizer"] = pre_tokenizer
    d["post_processor"] = post_processor
    d["decoder"] = decoder
    d["added_tokens"] = added
    d["truncation"] = None
    d["padding"] = None
    return Tokenizer.from_str(json.dumps(d, ensure_ascii=False))


def check_roundtrip(ctx: Context, key: str, tok) -> None:
    """Sanity: decode(encode(x)) == x on the corpus chunks (byte-level tokenizers must be lossless)."""
    bad = 0
    for chunk in corpus_chunks():
        ids = tok.encode(chunk, add_special_tokens=False).ids
        if tok.decode(ids, skip_special_tokens=False) != chunk:
            bad += 1
    if bad:
        ctx.note(key, f"decode(encode(x)) != x for {bad} corpus chunks (expected 0 for byte-level BPE)")


def save_hf_tokenizer(ctx: Context, key: str, tok, folder: Path, **special) -> None:
    """Wrap a tokenizers.Tokenizer in transformers and save_pretrained it (falls back to raw files)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        from transformers import PreTrainedTokenizerFast  # transformers 5.x: alias of TokenizersBackend

        hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, clean_up_tokenization_spaces=False, **special)
        hf_tok.save_pretrained(str(folder))
        ctx.note(key, f"tokenizer files written by transformers {type(hf_tok).__name__}.save_pretrained")
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        ctx.note(key, f"transformers save_pretrained failed ({type(e).__name__}: {e}); wrote files by hand")
        tok.save(str(folder / "tokenizer.json"))
        cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False}
        cfg.update({k: v for k, v in special.items()})
        cfg["added_tokens_decoder"] = {
            str(i): {"content": t.content, "lstrip": t.lstrip, "normalized": t.normalized, "rstrip": t.rstrip,
                     "single_word": t.single_word, "special": t.special}
            for i, t in sorted(tok.get_added_tokens_decoder().items())
        }
        write_json(folder / "tokenizer_config.json", cfg)
    verify_saved_tokenizer(ctx, key, tok, folder / "tokenizer.json")


def verify_saved_tokenizer(ctx: Context, key: str, tok, path: Path) -> None:
    """The saved tokenizer.json must encode exactly like the in-memory one (transformers may rewrite it)."""
    from tokenizers import Tokenizer

    saved = Tokenizer.from_file(str(path))
    diff = [
        i
        for i, t in enumerate(ctx.texts)
        if saved.encode(t, add_special_tokens=True).ids != tok.encode(t, add_special_tokens=True).ids
    ]
    if diff:
        ctx.note(key, f"saved tokenizer.json encodes differently from the built one for texts {diff}; "
                      "the reference uses the SAVED file")


# ----------------------------------------------------------------------------------------------------
# Step: byte-level BPE tokenizers
# ----------------------------------------------------------------------------------------------------


def step_tok_gpt2(ctx: Context) -> None:
    """GPT-2: ByteLevel(regex) pre-tokenizer, <|endoftext|> both in the model vocab and added (last id)."""
    from tokenizers import pre_tokenizers

    d = train_bytelevel_bpe(511, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
    vocab = d["model"]["vocab"]
    eot_id = len(vocab)
    vocab["<|endoftext|>"] = eot_id  # GPT-2 keeps <|endoftext|> in vocab.json (id 50256 = last)
    tok = finish_tokenizer(
        d,
        normalizer=None,
        pre_tokenizer=bytelevel(False, True, True),
        post_processor=bytelevel(True, False, True),
        decoder=bytelevel(True, True, True),
        added=[added_token(eot_id, "<|endoftext|>", special=True, normalized=True)],
    )
    check_roundtrip(ctx, "tiny-gpt2", tok)
    eot = "<|endoftext|>"
    save_hf_tokenizer(ctx, "tiny-gpt2", tok, ctx.hf / "tiny-gpt2", bos_token=eot, eos_token=eot, unk_token=eot,
                      model_max_length=128)
    log(f"  gpt2 tokenizer: {tok.get_vocab_size(with_added_tokens=True)} tokens, <|endoftext|>={eot_id}")


def step_tok_llama3(ctx: Context) -> None:
    """Llama-3: Split(LLAMA3_PATTERN) + ByteLevel(no regex), BPE ignore_merges, BOS template."""
    from tokenizers import Regex, pre_tokenizers

    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    d = train_bytelevel_bpe(509, pre)
    d["model"]["ignore_merges"] = True
    n = len(d["model"]["vocab"])
    bos, eos, think = "<|begin_of_text|>", "<|end_of_text|>", "<think>"
    added = [
        added_token(n, bos, special=True, normalized=False),
        added_token(n + 1, eos, special=True, normalized=False),
        added_token(n + 2, think, special=False, normalized=False),  # NON-special added token
    ]
    tok = finish_tokenizer(
        d,
        normalizer=None,
        pre_tokenizer={
            "type": "Sequence",
            "pretokenizers": [split_regex(LLAMA3_PATTERN), bytelevel(False, True, False)],
        },
        post_processor={"type": "Sequence", "processors": [bytelevel(True, False, True), template_bos(bos, n)]},
        decoder=bytelevel(True, True, True),
        added=added,
    )
    check_roundtrip(ctx, "tiny-llama", tok)
    save_hf_tokenizer(ctx, "tiny-llama", tok, ctx.hf / "tiny-llama", bos_token=bos, eos_token=eos,
                      model_max_length=256)
    log(f"  llama3 tokenizer: {tok.get_vocab_size(with_added_tokens=True)} tokens, bos={n} eos={n + 1} <think>={n + 2}")


def step_tok_qwen2(ctx: Context) -> None:
    """Qwen2: NFC normalizer, Split(QWEN2_PATTERN) + ByteLevel(no regex), no BOS."""
    from tokenizers import Regex, normalizers, pre_tokenizers

    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    # 500 + 3 added = 503 tokens; the model's config.vocab_size is padded to 512 like real Qwen2.
    d = train_bytelevel_bpe(500, pre, normalizer=normalizers.NFC())
    n = len(d["model"]["vocab"])
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = finish_tokenizer(
        d,
        normalizer={"type": "NFC"},
        pre_tokenizer={
            "type": "Sequence",
            "pretokenizers": [split_regex(QWEN2_PATTERN), bytelevel(False, False, False)],
        },
        post_processor=bytelevel(False, False, False),
        decoder=bytelevel(False, False, False),
        added=[added_token(n + i, s, special=True, normalized=False) for i, s in enumerate(specials)],
    )
    save_hf_tokenizer(ctx, "tiny-qwen2", tok, ctx.hf / "tiny-qwen2", eos_token="<|endoftext|>",
                      pad_token="<|endoftext|>", model_max_length=256)
    log(f"  qwen2 tokenizer: {tok.get_vocab_size(with_added_tokens=True)} tokens")


# ----------------------------------------------------------------------------------------------------
# Step: sentencepiece (Llama-2 / Mistral) tokenizers
# ----------------------------------------------------------------------------------------------------


def step_tok_spm_train(ctx: Context) -> None:
    """Train a real sentencepiece BPE model with Llama-2's trainer settings."""
    import sentencepiece as spm

    for ch in UNSEEN_CHARS:
        if ch in CORPUS:
            raise RuntimeError(f"byte-fallback test character {ch!r} must not be in the training corpus")
    corpus_file = ctx.work / "spm_corpus.txt"
    lines = [line for line in CORPUS.split("\n") if line.strip()]
    corpus_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    errors = []
    for vocab_size in (640, 800, 1000):  # 256 byte pieces + 3 controls + characters + merges
        prefix = ctx.work / f"spm_{vocab_size}"
        try:
            spm.SentencePieceTrainer.train(
                input=str(corpus_file),
                model_prefix=str(prefix),
                model_type="bpe",
                vocab_size=vocab_size,
                byte_fallback=True,
                split_digits=True,
                add_dummy_prefix=True,
                normalization_rule_name="identity",
                allow_whitespace_only_pieces=True,
                remove_extra_whitespaces=False,
                character_coverage=0.9995,
                unk_id=0,
                bos_id=1,
                eos_id=2,
                pad_id=-1,
                num_threads=1,
                hard_vocab_limit=False,
                shuffle_input_sentence=False,
                input_sentence_size=0,
                minloglevel=2,
            )
        except Exception as e:  # noqa: BLE001 - too small a vocab for the required characters: try larger
            errors.append(f"vocab_size={vocab_size}: {type(e).__name__}: {e}")
            continue
        ctx.spm_model = Path(str(prefix) + ".model")
        sp = spm.SentencePieceProcessor(model_file=str(ctx.spm_model))
        ctx.spm_info = {"requested_vocab_size": vocab_size, "piece_size": sp.get_piece_size(),
                        "failed_attempts": errors}
        log(f"  sentencepiece model: {sp.get_piece_size()} pieces (requested {vocab_size})")
        return
    raise RuntimeError("sentencepiece training failed: " + " | ".join(errors))


def spm_vocab_merges(model_path: Path) -> tuple[dict[str, int], list[tuple[str, str]], dict]:
    """vocab + merges of a sentencepiece BPE model, merges ranked like transformers' extractor does:
    by the id of the merged piece (= score order for BPE), then by the length of the left part."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    n = sp.get_piece_size()
    vocab = {sp.id_to_piece(i): i for i in range(n)}
    is_unused = getattr(sp, "is_unused", lambda i: False)
    merges = []
    for pid in range(n):
        if sp.is_control(pid) or sp.is_unknown(pid) or sp.is_byte(pid) or is_unused(pid):
            continue
        piece = sp.id_to_piece(pid)
        local = []
        for k in range(1, len(piece)):
            left, right = piece[:k], piece[k:]
            if left in vocab and right in vocab:
                local.append((len(left), vocab[left], vocab[right], left, right))
        local.sort()
        merges.extend((left, right) for *_, left, right in local)
    specials = {"unk": sp.id_to_piece(sp.unk_id()), "bos": sp.id_to_piece(sp.bos_id()),
                "eos": sp.id_to_piece(sp.eos_id())}
    return vocab, merges, specials


def build_spm_json(model_path: Path, form: str) -> dict:
    """Hand-built tokenizer.json for the trained sentencepiece vocab (model_path).

    form="legacy":    Llama-2 / Mistral hub form: normalizer Prepend("▁")+Replace(" ","▁"), no
                      pre-tokenizer, decoder Replace+ByteFallback+Fuse+Strip, merges as "a b" strings.
    form="metaspace": newer form: pre-tokenizer and decoder Metaspace(prepend_scheme="first",
                      split=false), no normalizer, merges as [a, b] pairs.
    Both: BPE with byte_fallback, fuse_unk, unk "<unk>", BOS template "<s> $A".
    """
    vocab, merges, sp_special = spm_vocab_merges(model_path)
    unk, bos, eos = sp_special["unk"], sp_special["bos"], sp_special["eos"]
    added = [added_token(vocab[t], t, special=True, normalized=False) for t in (unk, bos, eos)]
    if form == "legacy":
        normalizer = {
            "type": "Sequence",
            "normalizers": [
                {"type": "Prepend", "prepend": SPIECE},
                {"type": "Replace", "pattern": {"String": " "}, "content": SPIECE},
            ],
        }
        pre_tokenizer = None
        decoder = {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": SPIECE}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
            ],
        }
        merges_json = [f"{a} {b}" for a, b in merges]
    elif form == "metaspace":
        normalizer = None
        pre_tokenizer = {"type": "Metaspace", "replacement": SPIECE, "prepend_scheme": "first", "split": False}
        decoder = {"type": "Metaspace", "replacement": SPIECE, "prepend_scheme": "first", "split": False}
        merges_json = [[a, b] for a, b in merges]
    else:
        raise ValueError(form)
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": template_bos(bos, vocab[bos]),
        "decoder": decoder,
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": unk,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": merges_json,
        },
    }


def convert_spm_with_transformers(ctx: Context, key: str):
    """Convert the sentencepiece model to a fast tokenizer through transformers; the first path that
    works wins and is recorded.  transformers 5.x: LlamaTokenizer *is* the tokenizers-backed class
    (LlamaTokenizerFast is an alias) and from_pretrained(dir with tokenizer.model) converts the proto.
    transformers 4.x: LlamaTokenizerFast.from_pretrained(..., from_slow=True) converts via LlamaConverter."""
    import transformers

    src = ctx.work / "spm_src"
    src.mkdir(exist_ok=True)
    shutil.copy2(ctx.spm_model, src / "tokenizer.model")
    kw = {"add_bos_token": True, "add_eos_token": False}

    def via_llama_tokenizer():
        return transformers.LlamaTokenizer.from_pretrained(str(src), **kw)

    def via_llama_tokenizer_fast():
        return transformers.LlamaTokenizerFast.from_pretrained(str(src), from_slow=True, **kw)

    def via_vocab_file():
        return transformers.LlamaTokenizerFast(vocab_file=str(src / "tokenizer.model"), **kw)

    def via_llama_converter():
        from transformers.convert_slow_tokenizer import LlamaConverter

        slow = transformers.LlamaTokenizer(vocab_file=str(src / "tokenizer.model"), legacy=False, **kw)
        fast = LlamaConverter(slow).converted()
        return transformers.PreTrainedTokenizerFast(
            tokenizer_object=fast, bos_token="<s>", eos_token="</s>", unk_token="<unk>", **kw)

    errors = []
    for name, fn in (
        ("LlamaTokenizer.from_pretrained(dir with tokenizer.model)", via_llama_tokenizer),
        ("LlamaTokenizerFast.from_pretrained(dir, from_slow=True)", via_llama_tokenizer_fast),
        ("LlamaTokenizerFast(vocab_file=tokenizer.model)", via_vocab_file),
        ("convert_slow_tokenizer.LlamaConverter", via_llama_converter),
    ):
        try:
            t = fn()
            if not getattr(t, "is_fast", False) or getattr(t, "backend_tokenizer", None) is None:
                raise RuntimeError(f"{type(t).__name__} is not backed by tokenizers")
            t.backend_tokenizer.encode("Hello world")
            ctx.note(key, f"sentencepiece -> tokenizer.json conversion path: {name} -> {type(t).__name__}")
            if errors:
                ctx.note(key, "conversion paths that failed first: " + " | ".join(errors))
            return t
        except Exception as e:  # noqa: BLE001
            errors.append(f"{name}: {type(e).__name__}: {e}")
    ctx.note(key, "every transformers conversion path failed: " + " | ".join(errors))
    return None


def step_tok_mistral(ctx: Context) -> None:
    """tiny-mistral tokenizer: the sentencepiece model converted by transformers; must prepend <s>."""
    from tokenizers import Tokenizer, processors

    key, folder = "tiny-mistral", ctx.hf / "tiny-mistral"
    folder.mkdir(parents=True, exist_ok=True)
    hf_tok = convert_spm_with_transformers(ctx, key)
    if hf_tok is None:
        # Last resort so the model fixture still exists: the Metaspace form built by hand.
        from transformers import PreTrainedTokenizerFast

        tok = Tokenizer.from_str(json.dumps(build_spm_json(ctx.spm_model, "metaspace"), ensure_ascii=False))
        hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
        ctx.note(key, "FALLBACK: tokenizer.json built by hand (Metaspace form), not by a transformers converter")
    backend = hf_tok.backend_tokenizer
    bos_id = backend.token_to_id("<s>")
    ids = backend.encode("Hello world", add_special_tokens=True).ids
    if not ids or ids[0] != bos_id:
        backend.post_processor = processors.TemplateProcessing(
            single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1", special_tokens=[("<s>", bos_id)])
        ctx.note(key, f"converted tokenizer did not prepend <s> (got {ids[:3]}...); post_processor patched")
    hf_tok.save_pretrained(str(folder))
    if not (folder / "tokenizer.model").is_file():
        shutil.copy2(ctx.spm_model, folder / "tokenizer.model")  # real Mistral repos ship it too
    saved = read_json(folder / "tokenizer.json")
    ctx.note(key, "converted tokenizer.json form: normalizer=%s pre_tokenizer=%s decoder=%s post_processor=%s" % (
        (saved.get("normalizer") or {}).get("type"), (saved.get("pre_tokenizer") or {}).get("type"),
        (saved.get("decoder") or {}).get("type"), (saved.get("post_processor") or {}).get("type")))
    cfg = read_json(folder / "tokenizer_config.json")
    ctx.note(key, f"tokenizer_config.json: tokenizer_class={cfg.get('tokenizer_class')!r}, "
                  f"add_bos_token={cfg.get('add_bos_token')!r}, legacy={cfg.get('legacy')!r}")
    verify_saved_tokenizer(ctx, key, backend, folder / "tokenizer.json")


def step_tok_spm_legacy(ctx: Context) -> None:
    """Legacy Llama-2/Mistral tokenizer.json (Prepend/Replace normalizer, "a b" merges) of the same vocab."""
    from tokenizers import Tokenizer

    key, folder = "tok-spm-legacy", ctx.hf / "tok-spm-legacy"
    d = build_spm_json(ctx.spm_model, "legacy")
    tok = Tokenizer.from_str(json.dumps(d, ensure_ascii=False))
    # tokenizer_config.json etc. written by transformers; tokenizer.json then replaced by the hand-written
    # legacy serialization (transformers/tokenizers would re-serialize merges as pairs).
    save_hf_tokenizer(ctx, key, tok, folder, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                      model_max_length=256)
    write_json(folder / "tokenizer.json", d)
    verify_saved_tokenizer(ctx, key, tok, folder / "tokenizer.json")
    shutil.copy2(ctx.spm_model, folder / "tokenizer.model")
    ctx.note(key, "tokenizer.json hand-written in the legacy Llama-2 form (merges as 'a b' strings)")


def step_tok_metaspace(ctx: Context) -> None:
    """Metaspace-form tokenizer.json (pre-tokenizer + decoder Metaspace) of the same vocab."""
    from tokenizers import Tokenizer

    key, folder = "tok-metaspace", ctx.hf / "tok-metaspace"
    tok = Tokenizer.from_str(json.dumps(build_spm_json(ctx.spm_model, "metaspace"), ensure_ascii=False))
    save_hf_tokenizer(ctx, key, tok, folder, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                      model_max_length=256)


# ----------------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------------


def make_config(ctx: Context, key: str, config_cls, kwargs: dict, rope: dict | None):
    """Build a config; rope given in the 5.x form (rope_parameters incl. rope_theta); falls back to the
    4.x form (rope_theta + rope_scaling) if this transformers does not take rope_parameters."""
    if rope is None:
        return config_cls(**kwargs)
    try:
        cfg = config_cls(**kwargs, rope_parameters=dict(rope))
        rp = getattr(cfg, "rope_parameters", None)
        if not isinstance(rp, dict) or rp.get("rope_type", "default") != rope["rope_type"]:
            raise ValueError(f"rope_parameters not taken over: {rp!r}")
        return cfg
    except (TypeError, ValueError) as e:
        ctx.note(key, f"rope_parameters=... rejected ({type(e).__name__}: {e}); using rope_theta/rope_scaling")
        scaling = {k: v for k, v in rope.items() if k != "rope_theta"}
        if scaling.get("rope_type") == "default":
            scaling = None
        return config_cls(**kwargs, rope_theta=rope["rope_theta"], rope_scaling=scaling)


def instantiate(config, arch: str):
    """Random-init model of class `arch` with eager attention (so attention probabilities are returned)."""
    import torch
    import transformers

    cls = getattr(transformers, arch)
    try:
        model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    except TypeError:
        model = cls(config)
    if type(model).__name__ != arch:
        raise RuntimeError(f"from_config built {type(model).__name__}, expected {arch}")
    set_eager(model)
    return model.to(torch.float32).eval()


def set_eager(model) -> None:
    if getattr(model.config, "_attn_implementation", None) == "eager":
        return
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    else:
        model.config._attn_implementation = "eager"


def load_model(folder: Path, dtype=None):
    """from_pretrained(folder) with eager attention, computing in float32 (transformers 5 `dtype=`,
    4.x `torch_dtype=`)."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = dtype or torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(str(folder), attn_implementation="eager", dtype=dtype)
    except TypeError:
        model = AutoModelForCausalLM.from_pretrained(str(folder), attn_implementation="eager", torch_dtype=dtype)
    set_eager(model)
    return model.to(torch.float32).eval()


def perturb_weights(model, seed: int) -> dict:
    """Make the random model a sensitive test: peaked attention (q/k weights with std QK_STD), norm
    weights 1 + 0.1*randn, every norm/linear bias 0.1*randn (none of them zero or identity)."""
    import torch

    gen = torch.Generator().manual_seed(seed)

    def randn_like(t, std):
        return torch.randn(t.shape, generator=gen, dtype=torch.float32) * std

    counts = {"norm": 0, "qk": 0, "bias": 0}
    with torch.no_grad():
        for name, mod in model.named_modules():
            cls = type(mod).__name__
            weight = getattr(mod, "weight", None)
            bias = getattr(mod, "bias", None)
            if isinstance(mod, torch.nn.LayerNorm) or cls.endswith("RMSNorm"):
                weight.copy_(1.0 + randn_like(weight, NORM_JITTER))
                counts["norm"] += 1
            elif name.endswith(("q_proj", "k_proj")):
                weight.copy_(randn_like(weight, QK_STD))
                counts["qk"] += 1
            elif cls == "Conv1D" and name.endswith("attn.c_attn"):
                d = weight.shape[0]  # GPT-2 Conv1D weight is [n_embd, 3*n_embd] = [in, q|k|v]
                weight[:, : 2 * d].copy_(randn_like(weight[:, : 2 * d], QK_STD))
                counts["qk"] += 1
            if isinstance(bias, torch.nn.Parameter):
                bias.copy_(randn_like(bias, NORM_JITTER))
                counts["bias"] += 1
    return counts


def save_model(model, folder: Path, **kwargs) -> None:
    params = inspect.signature(model.save_pretrained).parameters
    if "safe_serialization" in params:  # transformers 4.x; 5.x always writes safetensors
        kwargs["safe_serialization"] = True
    model.save_pretrained(str(folder), **kwargs)
    if (folder / "pytorch_model.bin").exists():
        raise RuntimeError("save_pretrained wrote pytorch_model.bin instead of safetensors")


def final_norm_module(model):
    """The final norm before lm_head (Llama family: model.model.norm; GPT-2: transformer.ln_f)."""
    if hasattr(model, "transformer") and hasattr(model.transformer, "ln_f"):
        return model.transformer.ln_f
    if hasattr(model, "model") and hasattr(model.model, "norm"):
        return model.model.norm
    return model.get_decoder().norm


def eos_ids(model) -> list[int]:
    eos = getattr(model.config, "eos_token_id", None)
    if eos is None:
        eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        return []
    return list(eos) if isinstance(eos, (list, tuple)) else [int(eos)]


def pick_prompts(tok) -> list[str]:
    """Longest word prefix of each PROMPT_SOURCES entry with at most PROMPT_TARGETS[i] tokens."""
    prompts = []
    for src, target in zip(PROMPT_SOURCES, PROMPT_TARGETS):
        words = src.split(" ")
        best = words[0]
        for k in range(1, len(words) + 1):
            text = " ".join(words[:k])
            if len(tok.encode(text, add_special_tokens=True).ids) <= target:
                best = text
            else:
                break
        prompts.append(best)
    return prompts


def attention_stats(att) -> dict:
    """att: [L, H, T, T] probabilities.  Causality, normalisation and how peaked the rows are."""
    import torch

    T = att.shape[-1]
    upper = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    rows = att[..., 3:, :] if T > 3 else att  # rows with >= 4 visible keys
    ent = -(rows.clamp_min(1e-30).log() * rows).sum(-1)
    return {
        "max_abs_row_sum_minus_1": float((att.sum(-1) - 1).abs().max()),
        "max_above_diagonal": float(att[..., upper].abs().max()) if T > 1 else 0.0,
        "mean_row_max": float(rows.max(-1).values.mean()),
        "mean_row_entropy_nats": float(ent.mean()),
    }


def sliding_window_check(att, window: int) -> dict:
    """Mistral: query q may only see keys k with q - window < k <= q; beyond must be EXACTLY 0."""
    import torch

    T = att.shape[-1]
    q = torch.arange(T).view(T, 1)
    k = torch.arange(T).view(1, T)
    beyond = k <= q - window
    visible = (k <= q) & ~beyond
    beyond_vals = att[..., beyond]
    res = {
        "sliding_window": window,
        "T": T,
        "rule_tested": "query q attends keys k with q - sliding_window < k <= q",
        "num_entries_beyond_window": int(beyond.sum()) * att.shape[0] * att.shape[1],
        "max_attention_beyond_window": float(beyond_vals.abs().max()) if beyond_vals.numel() else 0.0,
        "min_attention_inside_window": float(att[..., visible].min()),
        "max_keys_attended_per_query": int((att > 0).sum(-1).max()),
    }
    res["beyond_window_exactly_zero"] = res["max_attention_beyond_window"] == 0.0
    # Which rule does the data follow?  (Guards against an off-by-one reading of "window".)
    wider = att[..., k <= q - window - 1]
    if res["beyond_window_exactly_zero"]:
        res["effective_rule"] = "q - W < k <= q (W keys per query)"
    elif wider.numel() == 0 or float(wider.abs().max()) == 0.0:
        res["effective_rule"] = "q - W <= k <= q (W + 1 keys per query)"
    else:
        res["effective_rule"] = "no sliding window applied"
    return res


def check_saved_sliding_window(ctx: Context, key: str, path: Path, window: int) -> dict:
    """Re-read the saved reference and print whether attention beyond the window is exactly 0."""
    from safetensors.torch import load_file

    saved = load_file(str(path))
    res = {}
    for i in range(len(PROMPT_TARGETS)):
        sw = sliding_window_check(saved[f"p{i}.attentions"], window)
        res[f"p{i}"] = sw
        verdict = ("EXACTLY 0 -> sliding window applied" if sw["beyond_window_exactly_zero"]
                   else "NOT ZERO") + f" (effective rule: {sw['effective_rule']})"
        log(f"  [{key}] sliding window check p{i} (T={sw['T']}, W={window}): max attention beyond window = "
            f"{sw['max_attention_beyond_window']!r}: {verdict}; max keys attended per query = "
            f"{sw['max_keys_attended_per_query']}")
        if sw["T"] > window and not sw["beyond_window_exactly_zero"]:
            ctx.note(key, f"p{i}: attention at k <= q - W is not zero in eager attention; "
                          f"effective rule: {sw['effective_rule']}")
    if max(r["T"] for r in res.values()) <= window:
        ctx.note(key, "no prompt is longer than the sliding window: the window is not exercised")
    return res


def compute_reference(ctx: Context, key: str, model, tok, family: str) -> tuple[dict, dict]:
    """All reference tensors of one model (see module docstring) and a JSON-able info dict."""
    import torch

    tensors: dict = {}
    info: dict = {"prompts": pick_prompts(tok), "checks": {}, "prompt_num_tokens": []}
    L = model.config.num_hidden_layers if hasattr(model.config, "num_hidden_layers") else model.config.n_layer
    norm = final_norm_module(model)
    conventions = []
    seqs = []
    for i, text in enumerate(info["prompts"]):
        ids = tok.encode(text, add_special_tokens=True).ids
        seqs.append(ids)
        info["prompt_num_tokens"].append(len(ids))
        input_ids = torch.tensor([ids], dtype=torch.long)
        captured = {}

        def hook(_mod, inputs, output, captured=captured):
            captured["in"] = inputs[0].detach().clone()
            captured["out"] = output.detach().clone()

        handle = norm.register_forward_hook(hook)
        try:
            with torch.no_grad():
                out = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                            output_hidden_states=True, output_attentions=True, use_cache=False, return_dict=True)
        finally:
            handle.remove()
        if out.attentions is None or any(a is None for a in out.attentions):
            raise RuntimeError("model returned no attention probabilities (is attn_implementation eager?)")
        if len(out.hidden_states) != L + 1 or len(out.attentions) != L:
            raise RuntimeError(f"expected {L + 1} hidden states / {L} attentions, got "
                               f"{len(out.hidden_states)} / {len(out.attentions)}")
        hs = torch.stack([h[0] for h in out.hidden_states]).float()  # [L+1, T, d]
        att = torch.stack([a[0] for a in out.attentions]).float()  # [L, H, T, T]
        logits = out.logits.float()
        if not torch.isfinite(logits).all():
            raise RuntimeError(f"non-finite logits for prompt {i}")
        tensors[f"p{i}.input_ids"] = input_ids
        tensors[f"p{i}.logits"] = logits
        tensors[f"p{i}.hidden_states"] = hs
        tensors[f"p{i}.attentions"] = att
        tensors[f"p{i}.final_norm_input"] = captured["in"][0].float()  # [T, d]: last layer output, pre-norm
        if torch.equal(hs[-1], captured["out"][0]):
            conventions.append("post_final_norm")
        elif torch.equal(hs[-1], captured["in"][0]):
            conventions.append("pre_final_norm")
        elif torch.allclose(hs[-1], captured["out"][0], atol=1e-6):
            conventions.append("post_final_norm (allclose)")
        else:
            conventions.append("neither")
        info["checks"][f"p{i}.attention"] = attention_stats(att)
        if family == "mistral" and getattr(model.config, "sliding_window", None):
            info["checks"][f"p{i}.sliding_window"] = sliding_window_check(att, int(model.config.sliding_window))
    info["hidden_states_last_convention_per_prompt"] = conventions
    info["hidden_states_last_is_post_final_norm"] = all(c.startswith("post_final_norm") for c in conventions)

    # Left-padded batch of the three prompts; position ids ignore the padding.
    pad_id = getattr(model.config, "pad_token_id", None)
    if pad_id is None:
        pad_id = (eos_ids(model) or [0])[0]
    T = max(len(s) for s in seqs)
    batch_ids = torch.full((len(seqs), T), int(pad_id), dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for b, s in enumerate(seqs):
        batch_ids[b, T - len(s):] = torch.tensor(s, dtype=torch.long)
        mask[b, T - len(s):] = 1
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        bout = model(input_ids=batch_ids, attention_mask=mask, position_ids=position_ids, use_cache=False,
                     return_dict=True)
    tensors["batch.input_ids"] = batch_ids
    tensors["batch.attention_mask"] = mask
    tensors["batch.position_ids"] = position_ids
    tensors["batch.logits"] = bout.logits.float()
    valid = mask.bool()
    if not torch.isfinite(bout.logits[valid]).all():
        raise RuntimeError("non-finite batch logits at non-padded positions")
    info["batch"] = {
        "logits_finite_at_padded_positions": bool(torch.isfinite(bout.logits[~valid]).all()),
        "pad_token_id": int(pad_id),
        "padding_side": "left",
        "position_ids": "(attention_mask.cumsum(-1) - 1).clamp(min=0)",
        "max_abs_diff_vs_single_prompt_logits": [
            float((bout.logits[b, T - len(s):] - tensors[f"p{b}.logits"][0]).abs().max()) for b, s in enumerate(seqs)
        ],
        "note": "logits at padded positions (attention_mask == 0) are not meaningful; compare mask == 1 only",
    }

    # Greedy generation from prompt 0 (8 new tokens; EOS suppressed until then via min_new_tokens).
    p0 = tensors["p0.input_ids"]
    gen_kwargs = dict(input_ids=p0, attention_mask=torch.ones_like(p0), max_new_tokens=NUM_NEW_TOKENS,
                      min_new_tokens=NUM_NEW_TOKENS, do_sample=False, num_beams=1, pad_token_id=int(pad_id))
    with torch.no_grad():
        gen = model.generate(**gen_kwargs)
    if not isinstance(gen, torch.Tensor):
        gen = gen.sequences
    tensors["gen.greedy"] = gen.to(torch.long)
    # Cross-check: argmax loop without KV cache, same EOS suppression.
    cur, gaps = p0.clone(), []
    eos = eos_ids(model)
    with torch.no_grad():
        for _ in range(NUM_NEW_TOKENS):
            last = model(input_ids=cur, use_cache=False).logits[0, -1].float().clone()
            if eos:
                last[eos] = float("-inf")
            top2 = torch.topk(last, 2).values
            gaps.append(float(top2[0] - top2[1]))
            cur = torch.cat([cur, last.argmax().view(1, 1)], dim=1)
    info["generation"] = {
        "kwargs": {k: v for k, v in gen_kwargs.items() if k not in ("input_ids", "attention_mask")},
        "eos_token_ids_suppressed": eos,
        "sequence_length": int(gen.shape[1]),
        "matches_no_cache_argmax_loop": bool(torch.equal(gen, cur)),
        "min_top1_top2_logit_gap": min(gaps),
    }
    if not torch.equal(gen, cur):
        ctx.note(key, f"generate() {gen.tolist()} != no-cache argmax loop {cur.tolist()}")
    return tensors, info


def save_reference(path: Path, tensors: dict) -> None:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path),
              metadata={"format": "pt", "generator": "tools/gpu/make_fixtures.py"})


def reference_json(ctx: Context, key: str, model, info: dict, extra: dict) -> dict:
    cfg = json.loads(model.config.to_json_string())
    L = cfg.get("num_hidden_layers", cfg.get("n_layer"))
    doc = {
        "model": key,
        "architecture": type(model).__name__,
        "versions": ctx.versions,
        "seed": SEED,
        "tensors": {
            "p{i}.input_ids": "int64 [1, T]: tokenizer.json encode(prompt, add_special_tokens=True)",
            "p{i}.logits": "float32 [1, T, config.vocab_size]",
            "p{i}.hidden_states": f"float32 [{L}+1, T, d_model]: output_hidden_states=True, batch dim dropped",
            "p{i}.attentions": "float32 [L, H, T, T]: output_attentions=True (eager softmax probabilities)",
            "p{i}.final_norm_input": "float32 [T, d_model]: input of the final norm (last layer output, "
                                     "pre-norm), captured with a forward hook",
            "batch.*": "3 prompts left padded: input_ids, attention_mask, position_ids int64 [3, T]; logits [3, T, V]",
            "gen.greedy": f"int64 [1, T0 + {NUM_NEW_TOKENS}]: generate(p0, greedy, min_new_tokens = max_new_tokens)",
        },
        "conventions": {
            "hidden_states[0]": "embedding output (GPT-2: token + position embeddings)",
            "hidden_states[i], 0<i<L": "output of decoder layer i-1 (residual stream, no norm)",
            "hidden_states[L]": "AFTER the final norm" if info.get("hidden_states_last_is_post_final_norm")
            else "see hidden_states_last_convention_per_prompt",
        },
        "config": cfg,
        "weights_init": {
            "initializer_range": INIT_STD, "q_k_weight_std": QK_STD,
            "norm_weights": f"1 + {NORM_JITTER} * randn", "biases": f"{NORM_JITTER} * randn",
        },
        "notes": ctx.notes.get(key, []),
    }
    doc.update(info)
    doc.update(extra)
    return doc


# Per-model specifications ----------------------------------------------------------------------------


def model_spec(ctx: Context, name: str):
    """(architecture, family, config class, config kwargs, rope dict or None, tokenizer folder)."""
    import transformers
    from tokenizers import Tokenizer

    common = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256, initializer_range=INIT_STD,
                  hidden_act="silu", use_cache=True)
    if name == "tiny-gpt2":
        tok = Tokenizer.from_file(str(ctx.hf / "tiny-gpt2" / "tokenizer.json"))
        eot = tok.token_to_id("<|endoftext|>")
        kwargs = dict(n_layer=2, n_head=4, n_embd=64, n_positions=128, vocab_size=tok.get_vocab_size(True),
                      activation_function="gelu_new", bos_token_id=eot, eos_token_id=eot, initializer_range=INIT_STD,
                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
        return "GPT2LMHeadModel", "gpt2", transformers.GPT2Config, kwargs, None, ctx.hf / "tiny-gpt2"
    if name in ("tiny-llama", "tiny-llama-linear"):
        src = ctx.hf / "tiny-llama"
        tok = Tokenizer.from_file(str(src / "tokenizer.json"))
        kwargs = dict(common, vocab_size=tok.get_vocab_size(True), rms_norm_eps=1e-5,
                      bos_token_id=tok.token_to_id("<|begin_of_text|>"),
                      eos_token_id=tok.token_to_id("<|end_of_text|>"))
        if name == "tiny-llama":
            kwargs.update(tie_word_embeddings=False, attention_bias=False)
            # head_dim 16: with original_max_position_embeddings=64 the 8 rope frequencies fall in all
            # three llama3 regimes (1 kept, 1 smoothly interpolated, 6 divided by factor).
            rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                    "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
        else:
            kwargs.update(tie_word_embeddings=True, attention_bias=True, head_dim=32)
            rope = {"rope_type": "linear", "rope_theta": 500000.0, "factor": 2.0}
        return "LlamaForCausalLM", "llama", transformers.LlamaConfig, kwargs, rope, src
    if name == "tiny-qwen2":
        tok = Tokenizer.from_file(str(ctx.hf / "tiny-qwen2" / "tokenizer.json"))
        n = tok.get_vocab_size(True)
        eot = tok.token_to_id("<|endoftext|>")
        kwargs = dict(common, vocab_size=((n + 63) // 64) * 64, rms_norm_eps=1e-6, tie_word_embeddings=True,
                      use_sliding_window=False, bos_token_id=eot, eos_token_id=eot)
        rope = {"rope_type": "default", "rope_theta": 1000000.0}
        return "Qwen2ForCausalLM", "qwen2", transformers.Qwen2Config, kwargs, rope, ctx.hf / "tiny-qwen2"
    if name == "tiny-mistral":
        tok = Tokenizer.from_file(str(ctx.hf / "tiny-mistral" / "tokenizer.json"))
        kwargs = dict(common, vocab_size=tok.get_vocab_size(True), rms_norm_eps=1e-5, sliding_window=8,
                      tie_word_embeddings=False, bos_token_id=tok.token_to_id("<s>"),
                      eos_token_id=tok.token_to_id("</s>"))
        rope = {"rope_type": "default", "rope_theta": 10000.0}
        return "MistralForCausalLM", "mistral", transformers.MistralConfig, kwargs, rope, ctx.hf / "tiny-mistral"
    raise ValueError(name)


def rope_regimes(model) -> dict | None:
    """Llama-family: the inv_freq actually used, and for llama3 how each frequency was treated."""
    import math

    import torch

    rot = getattr(getattr(model, "model", None), "rotary_emb", None)
    if rot is None or not hasattr(rot, "inv_freq"):
        return None
    inv = rot.inv_freq.detach().float()
    out = {"inv_freq": [float(x) for x in inv], "attention_scaling": float(getattr(rot, "attention_scaling", 1.0))}
    rp = getattr(model.config, "rope_parameters", None) or getattr(model.config, "rope_scaling", None) or {}
    if rp.get("rope_type") == "llama3":
        theta = rp.get("rope_theta", getattr(model.config, "rope_theta", None))
        hd = getattr(model.config, "head_dim", None) or model.config.hidden_size // model.config.num_attention_heads
        base = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
        old = rp["original_max_position_embeddings"]
        lo, hi = old / rp["low_freq_factor"], old / rp["high_freq_factor"]
        regimes = []
        for b in base:
            wl = 2 * math.pi / float(b)
            regimes.append("kept" if wl < hi else ("divided_by_factor" if wl > lo else "smoothed"))
        out["llama3_regimes"] = regimes
    return out


def step_model(name: str):
    def run(ctx: Context) -> None:
        import torch
        from tokenizers import Tokenizer

        arch, family, config_cls, kwargs, rope, tok_src = model_spec(ctx, name)
        folder = ctx.hf / name
        folder.mkdir(parents=True, exist_ok=True)
        if tok_src != folder:
            copy_tokenizer_files(tok_src, folder)
        torch.manual_seed(SEED + MODEL_NAMES.index(name))
        config = make_config(ctx, name, config_cls, kwargs, rope)
        model = instantiate(config, arch)
        counts = perturb_weights(model, SEED + 100 + MODEL_NAMES.index(name))
        log(f"  {name}: {sum(p.numel() for p in model.parameters())} parameters, perturbed {counts}")
        save_model(model, folder)

        # Everything below uses the model as LOADED from disk: that is what the C++ side loads too.
        loaded = load_model(folder)
        p0, p1 = dict(model.named_parameters()), dict(loaded.named_parameters())
        missing = sorted(set(p0) ^ set(p1))
        max_diff = max(float((p0[k] - p1[k]).abs().max()) for k in p0 if k in p1)
        if missing or max_diff != 0.0:
            raise RuntimeError(f"reloaded parameters differ: names {missing[:5]}, max abs diff {max_diff}")
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tensors, info = compute_reference(ctx, name, loaded, tok, family)
        save_reference(folder / "reference.safetensors", tensors)
        extra = {}
        if family == "mistral":
            extra["sliding_window_check_on_saved_reference"] = check_saved_sliding_window(
                ctx, name, folder / "reference.safetensors", int(loaded.config.sliding_window))
        extra.update({
            "attn_implementation": getattr(loaded.config, "_attn_implementation", None),
            "weights_file_tensors": {k: v["dtype"] + str(v["shape"])
                                     for k, v in safetensors_header(folder / "model.safetensors").items()
                                     if k != "__metadata__"},
            "tokenizer_num_tokens": tok.get_vocab_size(True),
        })
        rr = rope_regimes(loaded)
        if rr:
            extra["rope"] = rr
        if family == "qwen2":
            extra["qkv_bias_nonzero"] = all(
                float(getattr(layer.self_attn, p).bias.abs().max()) > 0
                for layer in loaded.model.layers for p in ("q_proj", "k_proj", "v_proj"))
        write_json(folder / "reference.json", reference_json(ctx, name, loaded, info, extra))
        att = info["checks"]["p2.attention"]
        log(f"  {name}: prompts {info['prompt_num_tokens']} tokens, hidden_states[-1] post-norm="
            f"{info['hidden_states_last_is_post_final_norm']}, p2 mean row max={att['mean_row_max']:.3f}, "
            f"gen len {info['generation']['sequence_length']}")
    return run


# Variants of tiny-llama ---------------------------------------------------------------------------------


def compare_logits_with(ctx: Context, model, ref_path: Path) -> dict:
    import torch
    from safetensors.torch import load_file

    ref = load_file(str(ref_path))
    res = {}
    with torch.no_grad():
        for i in range(len(PROMPT_TARGETS)):
            ids = ref[f"p{i}.input_ids"]
            logits = model(input_ids=ids, use_cache=False).logits.float()
            res[f"p{i}.max_abs_diff"] = float((logits - ref[f"p{i}.logits"]).abs().max())
    return res


def step_llama_bf16(ctx: Context) -> None:
    import torch
    from safetensors.torch import load_file

    src, folder = ctx.hf / "tiny-llama", ctx.hf / "tiny-llama-bf16"
    model = load_model(src).to(torch.bfloat16)
    save_model(model, folder)
    copy_tokenizer_files(src, folder)
    header = safetensors_header(folder / "model.safetensors")
    dtypes = sorted({v["dtype"] for k, v in header.items() if k != "__metadata__"})
    if dtypes != ["BF16"]:
        raise RuntimeError(f"bf16 checkpoint holds dtypes {dtypes}")
    cfg = read_json(folder / "config.json")
    # Reference: bf16 weights upcast to float32, computed in float32.
    loaded = load_model(folder, dtype=torch.float32)
    ref = load_file(str(src / "reference.safetensors"))
    tensors, diffs = {}, {}
    with torch.no_grad():
        for i in range(len(PROMPT_TARGETS)):
            ids = ref[f"p{i}.input_ids"]
            logits = loaded(input_ids=ids, use_cache=False).logits.float()
            tensors[f"p{i}.input_ids"] = ids
            tensors[f"p{i}.logits"] = logits
            diffs[f"p{i}.max_abs_diff_vs_float32_model"] = float((logits - ref[f"p{i}.logits"]).abs().max())
    save_reference(folder / "reference.safetensors", tensors)
    write_json(folder / "reference.json", {
        "model": "tiny-llama-bf16",
        "source": "tiny-llama, model.to(torch.bfloat16).save_pretrained",
        "versions": ctx.versions,
        "weights_dtypes": dtypes,
        "config_dtype_keys": {k: cfg[k] for k in ("dtype", "torch_dtype") if k in cfg},
        "tensors": {"p{i}.input_ids": "same prompts as tiny-llama",
                    "p{i}.logits": "float32: bf16 weights upcast to float32, forward computed in float32"},
        "checks": diffs,
        "notes": ctx.notes.get("tiny-llama-bf16", []),
    })
    log(f"  bf16: {diffs}")


def write_manual_shards(model, folder: Path, max_bytes: int) -> None:
    """Fallback if save_pretrained did not shard: same file layout, written with safetensors directly."""
    from safetensors.torch import save_file

    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    shards, cur, size = [], {}, 0
    for k, v in sd.items():
        nbytes = v.numel() * v.element_size()
        if cur and size + nbytes > max_bytes:
            shards.append(cur)
            cur, size = {}, 0
        cur[k] = v
        size += nbytes
    if cur:
        shards.append(cur)
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        fn = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(folder / fn), metadata={"format": "pt"})
        for k, v in shard.items():
            weight_map[k] = fn
            total += v.numel() * v.element_size()
    (folder / "model.safetensors").unlink(missing_ok=True)
    write_json(folder / "model.safetensors.index.json", {"metadata": {"total_size": total}, "weight_map": weight_map})


def step_llama_sharded(ctx: Context) -> None:
    src, folder = ctx.hf / "tiny-llama", ctx.hf / "tiny-llama-sharded"
    model = load_model(src)
    save_model(model, folder, max_shard_size="50KB")
    copy_tokenizer_files(src, folder)
    index = folder / "model.safetensors.index.json"
    if not index.is_file():
        ctx.note("tiny-llama-sharded", "save_pretrained(max_shard_size='50KB') did not shard; wrote shards by hand")
        write_manual_shards(model, folder, 50_000)
    shards = sorted({v for v in read_json(index)["weight_map"].values()})
    if len(shards) < 2:
        raise RuntimeError(f"expected several shards, got {shards}")
    checks = compare_logits_with(ctx, load_model(folder), src / "reference.safetensors")
    write_json(folder / "reference.json", {
        "model": "tiny-llama-sharded",
        "source": "tiny-llama, save_pretrained(max_shard_size='50KB')",
        "reference": "../tiny-llama/reference.safetensors (identical weights: all tensors there apply)",
        "versions": ctx.versions,
        "shards": shards,
        "checks": {"logits_vs_tiny_llama_reference": checks},
        "notes": ctx.notes.get("tiny-llama-sharded", []),
    })
    log(f"  sharded: {len(shards)} shards, {checks}")


def convert_rope_config(cfg: dict) -> tuple[dict, str]:
    """config.json in the OTHER rope form: 5.x rope_parameters <-> 4.x top-level rope_theta/rope_scaling."""
    new = copy.deepcopy(cfg)
    if isinstance(new.get("rope_parameters"), dict):
        rp = dict(new.pop("rope_parameters"))
        new["rope_theta"] = rp.pop("rope_theta", 10000.0)
        if "partial_rotary_factor" in rp:
            new["partial_rotary_factor"] = rp.pop("partial_rotary_factor")
        new["rope_scaling"] = None if rp.get("rope_type", "default") == "default" else rp
        if "dtype" in new and "torch_dtype" not in new:
            new["torch_dtype"] = new.pop("dtype")
        return new, "transformers 4.x form: top-level rope_theta + rope_scaling (and torch_dtype)"
    rp = dict(new.pop("rope_scaling", None) or {"rope_type": "default"})
    rp.setdefault("rope_type", rp.pop("type", "default"))
    rp["rope_theta"] = new.pop("rope_theta", 10000.0)
    new["rope_parameters"] = rp
    return new, "transformers 5.x form: rope_parameters (incl. rope_theta)"


def step_llama_v4config(ctx: Context) -> None:
    src, folder = ctx.hf / "tiny-llama", ctx.hf / "tiny-llama-v4config"
    folder.mkdir(parents=True, exist_ok=True)
    for fn in ("model.safetensors", "generation_config.json"):
        if (src / fn).is_file():
            shutil.copy2(src / fn, folder / fn)
    copy_tokenizer_files(src, folder)
    cfg = read_json(src / "config.json")
    new, form = convert_rope_config(cfg)
    write_json(folder / "config.json", new)
    loaded = load_model(folder)
    original = load_model(src)
    rope_a = getattr(loaded.config, "rope_parameters", None) or getattr(loaded.config, "rope_scaling", None)
    rope_b = getattr(original.config, "rope_parameters", None) or getattr(original.config, "rope_scaling", None)
    checks = compare_logits_with(ctx, loaded, src / "reference.safetensors")
    checks["loaded_rope_equals_tiny_llama"] = rope_a == rope_b
    checks["inv_freq_equal"] = bool(
        (loaded.model.rotary_emb.inv_freq == original.model.rotary_emb.inv_freq).all())
    write_json(folder / "reference.json", {
        "model": "tiny-llama-v4config",
        "source": "tiny-llama weights; config.json rewritten by hand",
        "config_form": form,
        "tiny_llama_config_form": "rope_parameters" if "rope_parameters" in cfg else "rope_theta/rope_scaling",
        "reference": "../tiny-llama/reference.safetensors (identical model: all tensors there apply)",
        "versions": ctx.versions,
        "checks": checks,
        "loaded_rope": rope_a,
        "notes": ctx.notes.get("tiny-llama-v4config", []),
    })
    log(f"  v4config ({form}): {checks}")
    if not checks["inv_freq_equal"]:
        raise RuntimeError("the rewritten config does not reproduce tiny-llama's rope frequencies")


# ----------------------------------------------------------------------------------------------------
# Tokenizer reference
# ----------------------------------------------------------------------------------------------------

TOKENIZER_FOLDERS = ("tiny-gpt2", "tiny-llama", "tiny-qwen2", "tiny-mistral", "tok-spm-legacy", "tok-metaspace")


def step_tokenizer_reference(ctx: Context) -> None:
    from tokenizers import Tokenizer

    ref = {
        "texts": ctx.texts,
        "source_of_truth": "tokenizers.Tokenizer.from_file(<folder>/tokenizer.json): encode(text, "
                           "add_special_tokens=True/False).ids, .tokens (with specials), decode(with-special ids, "
                           "skip_special_tokens=False/True)",
        "versions": ctx.versions,
        "shared": {"tiny-llama-linear, tiny-llama-*": "same tokenizer files as tiny-llama"},
        "tokenizers": {},
    }
    done = 0
    for name in TOKENIZER_FOLDERS:
        path = ctx.hf / name / "tokenizer.json"
        if not path.is_file():
            ctx.note("tokenizer_reference", f"{name}: no tokenizer.json (its step failed); left out")
            continue
        tok = Tokenizer.from_file(str(path))
        entry = {"path": f"{name}/tokenizer.json", "num_tokens": tok.get_vocab_size(True),
                 "with_special": [], "without_special": [], "tokens": [], "decode": [], "decode_skip": []}
        try:
            entry["added_tokens"] = [{"id": i, "content": t.content, "special": t.special, "normalized": t.normalized}
                                     for i, t in sorted(tok.get_added_tokens_decoder().items())]
        except Exception as e:  # noqa: BLE001
            entry["added_tokens"] = f"unavailable: {e}"
        for text in ctx.texts:
            enc = tok.encode(text, add_special_tokens=True)
            entry["with_special"].append(enc.ids)
            entry["tokens"].append(enc.tokens)
            entry["without_special"].append(tok.encode(text, add_special_tokens=False).ids)
            entry["decode"].append(tok.decode(enc.ids, skip_special_tokens=False))
            entry["decode_skip"].append(tok.decode(enc.ids, skip_special_tokens=True))
        entry["transformers_check"] = transformers_crosscheck(ctx, name, entry)
        if name in ("tiny-mistral", "tok-spm-legacy", "tok-metaspace") and ctx.spm_model:
            entry["sentencepiece_check"] = sentencepiece_crosscheck(ctx, entry)
        ref["tokenizers"][name] = entry
        done += 1
        log(f"  {name}: {len(ctx.texts)} texts; transformers mismatches: "
            f"{entry['transformers_check'].get('mismatch_counts')}")
    ref["spm_training"] = ctx.spm_info
    ref["notes"] = ctx.notes.get("tokenizer_reference", [])
    ref["tokenizer_notes"] = {k: ctx.notes.get(k, []) for k in TOKENIZER_FOLDERS if ctx.notes.get(k)}
    write_json(ctx.hf / "tokenizer_reference.json", ref, compact=True)
    if done == 0:
        raise RuntimeError("no tokenizer available")


def transformers_crosscheck(ctx: Context, name: str, entry: dict) -> dict:
    """Does transformers' AutoTokenizer on the saved folder agree with the tokenizer.json reference?"""
    try:
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(str(ctx.hf / name))
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}
    res = {"class": type(hf).__name__, "mismatch_counts": {}, "mismatches": {}}
    for field, fn in (
        ("with_special", lambda t: hf(t, add_special_tokens=True)["input_ids"]),
        ("without_special", lambda t: hf(t, add_special_tokens=False)["input_ids"]),
        ("decode", None),
        ("decode_skip", None),
    ):
        bad = {}
        for i, text in enumerate(ctx.texts):
            try:
                if field == "decode":
                    got = hf.decode(entry["with_special"][i], skip_special_tokens=False)
                elif field == "decode_skip":
                    got = hf.decode(entry["with_special"][i], skip_special_tokens=True)
                else:
                    got = list(fn(text))
            except Exception as e:  # noqa: BLE001
                got = f"error: {type(e).__name__}: {e}"
            if got != entry[field][i]:
                bad[str(i)] = got
        res["mismatch_counts"][field] = len(bad)
        if bad:
            res["mismatches"][field] = bad
    return res


def sentencepiece_crosscheck(ctx: Context, entry: dict) -> dict:
    """Compare with the original sentencepiece model (BOS prepended).  Differences are expected for
    texts that contain special-token strings (sentencepiece treats them as plain text)."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(ctx.spm_model))
    diff = [i for i, t in enumerate(ctx.texts) if [sp.bos_id()] + sp.encode(t) != entry["with_special"][i]]
    return {"texts_differing_from_sentencepiece": diff,
            "sentencepiece_ids_for_those": {str(i): [sp.bos_id()] + sp.encode(ctx.texts[i]) for i in diff}}


# ----------------------------------------------------------------------------------------------------
# Manifest and main
# ----------------------------------------------------------------------------------------------------


def write_manifest(ctx: Context) -> int:
    files = []
    total = 0
    for p in sorted(ctx.hf.rglob("*")):
        if p.is_file() and p.name != "manifest.json":
            size = p.stat().st_size
            total += size
            files.append({"path": str(p.relative_to(ctx.hf)), "bytes": size, "sha256": sha256(p)})
    manifest = {
        "generator": "tools/gpu/make_fixtures.py",
        "command": " ".join(sys.argv),
        "versions": ctx.versions,
        "seed": SEED,
        "status": ctx.status,
        "total_bytes": total,
        "size_limit_bytes": SIZE_LIMIT_BYTES,
        "files": files,
    }
    write_json(ctx.hf / "manifest.json", manifest)
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="output directory; fixtures go to OUT/hf/")
    ap.add_argument("--overwrite", action="store_true", help="delete an existing non-empty OUT/hf first")
    args = ap.parse_args()

    hf = args.out / "hf"
    if hf.exists() and any(hf.iterdir()):
        if not args.overwrite:
            log(f"error: {hf} exists and is not empty (use --overwrite to replace it)")
            return 2
        shutil.rmtree(hf)
    hf.mkdir(parents=True, exist_ok=True)

    ctx = Context(args.out)
    log(f"versions: {json.dumps(ctx.versions)}")
    try:
        import torch

        torch.manual_seed(SEED)
        torch.use_deterministic_algorithms(True, warn_only=True)
        import transformers

        transformers.logging.set_verbosity_warning()
    except Exception:  # noqa: BLE001 - the steps report the missing package themselves
        traceback.print_exc()

    run_step(ctx, "tok.gpt2", step_tok_gpt2)
    run_step(ctx, "tok.llama3", step_tok_llama3)
    run_step(ctx, "tok.qwen2", step_tok_qwen2)
    run_step(ctx, "tok.spm-train", step_tok_spm_train)
    run_step(ctx, "tok.mistral", step_tok_mistral, requires=("tok.spm-train",))
    run_step(ctx, "tok.spm-legacy", step_tok_spm_legacy, requires=("tok.spm-train",))
    run_step(ctx, "tok.metaspace", step_tok_metaspace, requires=("tok.spm-train",))

    run_step(ctx, "model.tiny-gpt2", step_model("tiny-gpt2"), requires=("tok.gpt2",))
    run_step(ctx, "model.tiny-llama", step_model("tiny-llama"), requires=("tok.llama3",))
    run_step(ctx, "model.tiny-llama-linear", step_model("tiny-llama-linear"), requires=("tok.llama3",))
    run_step(ctx, "model.tiny-qwen2", step_model("tiny-qwen2"), requires=("tok.qwen2",))
    run_step(ctx, "model.tiny-mistral", step_model("tiny-mistral"), requires=("tok.mistral",))

    run_step(ctx, "variant.tiny-llama-bf16", step_llama_bf16, requires=("model.tiny-llama",))
    run_step(ctx, "variant.tiny-llama-sharded", step_llama_sharded, requires=("model.tiny-llama",))
    run_step(ctx, "variant.tiny-llama-v4config", step_llama_v4config, requires=("model.tiny-llama",))

    run_step(ctx, "tokenizer_reference", step_tokenizer_reference)

    total = write_manifest(ctx)
    if total >= SIZE_LIMIT_BYTES:
        ctx.status["size_check"] = f"FAILED: {total} bytes >= {SIZE_LIMIT_BYTES}"
        write_manifest(ctx)
    else:
        ctx.status["size_check"] = "ok"
        write_manifest(ctx)
    shutil.rmtree(ctx.work, ignore_errors=True)

    log("\n=== summary")
    for name, st in ctx.status.items():
        log(f"  {name:32s} {st}")
    log(f"  total size: {total} bytes in {hf}")
    failed = [n for n, s in ctx.status.items() if s != "ok"]
    if failed:
        log(f"FAILED/SKIPPED: {', '.join(failed)}")
        return 1
    log("all fixtures ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
