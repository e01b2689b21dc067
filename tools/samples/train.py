#!/usr/bin/env python3
"""Train attnscope's bundled sample language models (issue #3).

Trains, from scratch and reproducibly, on the corpus built by
tools/samples/extract_corpus.sh:

  * a byte-level BPE tokenizer (HF `tokenizers`, GPT-2 pre-tokenizer,
    "<|endoftext|>" as BOS = EOS = PAD, BOS added by the post-processor),
  * <name>-llama: LlamaForCausalLM with grouped-query attention,
  * <name>-gpt2:  GPT2LMHeadModel,

then evaluates them (train/held-out loss and perplexity, attention-sink
ratio after Gu et al., greedy and sampled generations) and writes

  OUT/models/<name>-llama/   HF folder: config.json, generation_config.json,
  OUT/models/<name>-gpt2/    model.safetensors (bf16), tokenizer.json,
                             tokenizer_config.json, README.md (model card)
  OUT/MODEL_CARD.md          both model cards
  OUT/train_report.json      every number
  OUT/train.log              the log

and, with --bundle DIR, a deterministic tar of all that split into parts of
at most 15 MiB plus loose copies of the report, card and log.

Nothing here needs a network.  Every step that can break (tokenizer
round-trip, two optimiser steps, save/load of both models, eager attention
weights, generation) runs in a preflight before the long training loops, so
a broken environment fails within the first minute.  --smoke runs only that
(on a subset of the corpus) and prints the measured step times.

Example (one H100, about 8 minutes in all):
  python3 tools/samples/train.py --corpus build-corpus/carry --out /tmp/tinydeb \
      --steps auto --time-budget 170 --bundle "$OUT"
"""

from __future__ import annotations

import os

# must be set before CUDA is initialised (deterministic cuBLAS)
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import gzip  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tarfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

EOT = "<|endoftext|>"
T0 = time.time()
_LOG_FH = None
_ARGS: dict = {}

PROMPTS = [
    "It is a truth universally acknowledged, that",
    "Emma Woodhouse, handsome, clever, and rich,",
    "In the beginning God created",
    "And the LORD said unto Moses,",
    "The kernel",
    "To configure the device driver,",
    "def fibonacci(n):",
    "The Python interpreter",
    "hacker: n.",
    "Apple, n.",
]

MAX_MODEL_DIR_BYTES = 25_000_000


# ----------------------------------------------------------------------------
# small utilities
# ----------------------------------------------------------------------------

def log(msg: str) -> None:
    line = f"[{time.time() - T0:7.1f}s] {msg}"
    print(line, flush=True)
    if _LOG_FH is not None:
        _LOG_FH.write(line + "\n")
        _LOG_FH.flush()


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dir_bytes(d: Path) -> int:
    return sum(p.stat().st_size for p in d.rglob("*") if p.is_file())


def fail(msg: str) -> None:
    raise SystemExit(f"FATAL: {msg}")


def check(cond: bool, msg: str) -> None:
    if not cond:
        fail(msg)


def read_split(corpus: Path, split: str) -> tuple[list[str], dict]:
    for name in (f"{split}.txt", f"{split}.txt.gz"):
        p = corpus / name
        if p.exists():
            raw = p.read_bytes()
            info = {"file": name, "file_sha256": sha256_bytes(raw)}
            if name.endswith(".gz"):
                raw = gzip.decompress(raw)
            info["sha256"] = sha256_bytes(raw)  # of the plain text, as in SOURCES.md
            info["bytes"] = len(raw)
            text = raw.decode("utf-8")
            check(text.endswith("\n" + EOT + "\n"), f"{p}: does not end with an {EOT} line")
            docs = text.split("\n" + EOT + "\n")
            check(docs[-1] == "", f"{p}: trailing text after the last separator")
            docs = docs[:-1]
            for d in docs:
                if EOT in d:
                    fail(f"{p}: a document contains {EOT}")
            docs = [d for d in docs if d.strip()]
            info["docs"] = len(docs)
            return docs, info
    fail(f"no {split}.txt or {split}.txt.gz in {corpus}")
    raise AssertionError


# ----------------------------------------------------------------------------
# tokenizer
# ----------------------------------------------------------------------------

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def train_tokenizer(docs: list[str], vocab_size: int, pretok: str):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())  # byte-level: every input is covered, no <unk>
    if pretok == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(iter(docs), trainer=trainer, length=len(docs))
    bos = tok.token_to_id(EOT)
    check(bos == 0, f"{EOT} should have id 0, got {bos}")
    tok.post_processor = processors.TemplateProcessing(
        single=f"{EOT} $A", pair=f"{EOT} $A {EOT} $B", special_tokens=[(EOT, bos)])
    return tok, bos


def make_hf_tokenizer(tok):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOT, eos_token=EOT, pad_token=EOT,
        add_bos_token=True, add_eos_token=False, model_max_length=1024,
        clean_up_tokenization_spaces=False,
        # no token_type_ids: GPT-2 would add wte[token_type_id] to every position
        model_input_names=["input_ids", "attention_mask"])


TOKENIZER_CLASS = {"name": "PreTrainedTokenizerFast"}  # settled by the preflight


def save_tokenizer(hf_tok, d: Path) -> None:
    hf_tok.save_pretrained(str(d))
    cfg_path = d / "tokenizer_config.json"
    check(cfg_path.exists(), f"save_pretrained wrote no {cfg_path}")
    cfg = json.loads(cfg_path.read_text())
    # transformers 5 writes "TokenizersBackend", which older readers do not know;
    # "PreTrainedTokenizerFast" loads the generic tokenizer.json class in 4.x and 5.x
    cfg["tokenizer_class"] = TOKENIZER_CLASS["name"]
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")
    check((d / "tokenizer.json").exists(), f"no tokenizer.json in {d}")


TOKENIZER_PROBES = [
    "It is a truth universally acknowledged.",
    "  leading spaces, tabs\tand\nnew lines\n\n  indented code:\n    x = f(a, b)  # comment",
    "Unicode: naïve café — “quotes” ‘single’ … Yahweh’s 1913 [Obs.] --Shak.",
    "static int __init foo_init(void) { return -ENOMEM; }",
]


def check_tokenizer_dir(d: Path, raw_tok, bos: int) -> dict:
    """Load d with AutoTokenizer and compare with the raw tokenizers.Tokenizer."""
    from transformers import AutoTokenizer

    t = AutoTokenizer.from_pretrained(str(d))
    for text in TOKENIZER_PROBES:
        want = raw_tok.encode(text).ids  # includes the BOS added by the template
        got = t(text)["input_ids"]
        if got != want:
            raise RuntimeError(f"tokenizer round-trip mismatch for {text!r}: {got[:12]} vs {want[:12]}")
        if got[0] != bos or (len(got) > 1 and got[-1] == bos):
            raise RuntimeError(f"BOS handling wrong for {text!r}: {got[:4]}...{got[-2:]}")
        back = t.decode(got, skip_special_tokens=True)
        if back != text:
            raise RuntimeError(f"decode mismatch: {back!r} != {text!r}")
    return {"class": type(t).__name__, "bos_id": t.bos_token_id, "eos_id": t.eos_token_id,
            "pad_id": t.pad_token_id}


# ----------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------

def encode_docs(tok, docs: list[str], batch: int = 256):
    import numpy as np

    enc = getattr(tok, "encode_batch_fast", None) or tok.encode_batch
    out = []
    for i in range(0, len(docs), batch):
        for e in enc(docs[i:i + batch], add_special_tokens=False):
            out.append(np.asarray(e.ids, dtype=np.int32))
    return out


def make_windows(doc_ids, bos: int, T: int, keep_partial: bool):
    """Pack [BOS]+doc token streams into rows of T tokens that all start with BOS.

    The stream is cut into consecutive windows; a window that does not begin at a
    document's own BOS gets a BOS prepended (and holds T-1 stream tokens), so the
    first position of every training sequence is the same BOS token.  Returns an
    int64 array [N, T] and the number of real tokens in each row (T except maybe
    for the last row when keep_partial).
    """
    import numpy as np

    parts = []
    for d in doc_ids:
        parts.append(np.asarray([bos], dtype=np.int64))
        parts.append(d.astype(np.int64))
    stream = np.concatenate(parts)
    rows, lens = [], []
    pos, n = 0, len(stream)
    while pos < n:
        if stream[pos] == bos:
            w = stream[pos:pos + T]
            pos += T
        else:
            w = np.concatenate(([bos], stream[pos:pos + T - 1]))
            pos += T - 1
        if len(w) < T:
            if not keep_partial or len(w) < 2:
                break
            lens.append(len(w))
            w = np.concatenate((w, np.full(T - len(w), bos, dtype=np.int64)))
        else:
            lens.append(T)
        rows.append(w)
    return np.stack(rows), np.asarray(lens), int(n)


# ----------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------

def make_config(kind: str, a, vocab: int, bos: int):
    from transformers import GPT2Config, LlamaConfig

    if kind == "llama":
        cfg = LlamaConfig(
            vocab_size=vocab, hidden_size=a.hidden, intermediate_size=a.llama_intermediate,
            num_hidden_layers=a.layers, num_attention_heads=a.heads, num_key_value_heads=a.kv_heads,
            head_dim=a.hidden // a.heads, hidden_act="silu", max_position_embeddings=1024,
            initializer_range=0.02, rms_norm_eps=1e-5, use_cache=True,
            bos_token_id=bos, eos_token_id=bos, pad_token_id=bos, tie_word_embeddings=True,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
            attention_bias=False, attention_dropout=0.0, mlp_bias=False)
        rp = getattr(cfg, "rope_parameters", None) or {}
        theta = rp.get("rope_theta", getattr(cfg, "rope_theta", None)) if isinstance(rp, dict) else None
        if theta is None:
            theta = getattr(cfg, "rope_theta", None)
        check(theta is not None and abs(float(theta) - 10000.0) < 1e-6, f"rope_theta is {theta}")
        return cfg
    return GPT2Config(
        vocab_size=vocab, n_positions=1024, n_embd=a.hidden, n_layer=a.layers, n_head=a.heads,
        n_inner=None, activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0,
        attn_pdrop=0.0, layer_norm_epsilon=1e-5, initializer_range=0.02, use_cache=True,
        bos_token_id=bos, eos_token_id=bos, pad_token_id=bos, tie_word_embeddings=True)


def build_model(kind: str, cfg, seed: int, device):
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(copy.deepcopy(cfg), attn_implementation="sdpa")
    model = model.float().to(device)
    model.train()
    tie_ok = model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    check(tie_ok, f"{kind}: output embeddings are not tied to the input embeddings")
    return model


def load_model(d: Path, attn: str, device):
    import torch
    from transformers import AutoModelForCausalLM

    try:
        m = AutoModelForCausalLM.from_pretrained(str(d), dtype=torch.float32, attn_implementation=attn)
    except TypeError:  # transformers 4.x before `dtype`
        m = AutoModelForCausalLM.from_pretrained(str(d), torch_dtype=torch.float32, attn_implementation=attn)
    m = m.float().to(device).eval()
    return m


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def make_optimizer(model, a, device):
    import torch

    decay, no_decay = [], []
    for _n, p in model.named_parameters():
        (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": a.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    kw = {"lr": a.lr, "betas": (0.9, 0.95), "eps": 1e-8}
    if device.type == "cuda":
        kw["fused"] = True
    return torch.optim.AdamW(groups, **kw)


def lr_at(step: int, steps: int, peak: float, warmup: int, min_ratio: float) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    prog = min(1.0, (step - warmup) / max(1, steps - warmup))
    return peak * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * prog)))


class Batches:
    """Epoch-wise random permutations of window indices from a seeded CPU generator."""

    def __init__(self, n: int, bs: int, seed: int):
        import torch

        self.torch = torch
        self.n, self.bs = n, bs
        self.g = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self._new()

    def _new(self):
        self.perm = self.torch.randperm(self.n, generator=self.g)
        self.i = 0

    def next(self):
        if self.i + self.bs > self.n:
            self.epoch += 1
            self._new()
        idx = self.perm[self.i:self.i + self.bs]
        self.i += self.bs
        return idx


def train_step(model, opt, x, amp: bool, clip: float):
    import torch
    import torch.nn.functional as F

    with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=amp):
        logits = model(input_ids=x, use_cache=False).logits
    V = logits.size(-1)
    loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, V), x[:, 1:].reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return loss.detach(), gnorm.detach()


def set_determinism(mode: str) -> None:
    import torch

    if mode == "strict":
        torch.use_deterministic_algorithms(True)
    elif mode == "warn_only":
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.use_deterministic_algorithms(False)


# ----------------------------------------------------------------------------
# saving and checking
# ----------------------------------------------------------------------------

def save_model(model, hf_tok, d: Path, bos: int, card: str | None = None) -> None:
    import torch
    from transformers import GenerationConfig

    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    try:
        m = copy.deepcopy(model)
    except Exception:  # noqa: BLE001 - fall back to a fresh module with the same weights
        from transformers import AutoModelForCausalLM

        m = AutoModelForCausalLM.from_config(copy.deepcopy(model.config))
        m.load_state_dict(model.state_dict())
    m = m.to(torch.bfloat16)
    m.generation_config = GenerationConfig(bos_token_id=bos, eos_token_id=bos, pad_token_id=bos)
    m.save_pretrained(str(d))
    del m
    save_tokenizer(hf_tok, d)
    if card:
        (d / "README.md").write_text(card)


def check_saved(model, d: Path, raw_tok, bos: int, x, device, n_layers: int, n_heads: int) -> dict:
    """Save/load round trip: files, sizes, bf16 weights equal to the trained
    weights rounded to bf16, tying, sdpa vs eager logits, attention weights,
    tokenizer, generation."""
    import torch
    from safetensors import safe_open

    info: dict = {}
    set_determinism("warn_only")  # generate() & co. need no bitwise determinism; caller restores
    for f in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
              "tokenizer_config.json"):
        check((d / f).exists(), f"{d}: {f} missing after save_pretrained")
    size = dir_bytes(d)
    info["dir_bytes"] = size
    info["safetensors_bytes"] = (d / "model.safetensors").stat().st_size
    check(size <= MAX_MODEL_DIR_BYTES, f"{d} is {size} bytes, over {MAX_MODEL_DIR_BYTES}")
    n_file, other = 0, []
    with safe_open(str(d / "model.safetensors"), framework="pt") as f:
        for k in f.keys():
            t = f.get_tensor(k)
            if t.is_floating_point():
                check(t.dtype == torch.bfloat16, f"{d}: tensor {k} is {t.dtype}, not bfloat16")
                n_file += t.numel()
            else:
                other.append(f"{k}:{t.dtype}")
    info["params_in_file"] = n_file
    info["non_float_tensors_in_file"] = other
    gc = json.loads((d / "generation_config.json").read_text())
    check(gc.get("bos_token_id") == bos and gc.get("eos_token_id") == bos, f"{d}: generation_config ids {gc}")

    m2 = load_model(d, "sdpa", device)
    ref = {n: p.detach().to(torch.bfloat16).float() for n, p in model.named_parameters()}
    got = dict(m2.named_parameters())
    check(set(ref) == set(got), f"{d}: parameter names differ after reload: "
          f"{sorted(set(ref) ^ set(got))[:6]}")
    for n, p in got.items():
        if not torch.equal(p.detach(), ref[n]):
            fail(f"{d}: parameter {n} differs after save/load (max diff "
                 f"{(p.detach() - ref[n]).abs().max().item():.3g})")
    tie_ok = m2.get_output_embeddings().weight.data_ptr() == m2.get_input_embeddings().weight.data_ptr()
    check(tie_ok, f"{d}: embeddings not tied after reload")
    info["attn_impl_default"] = getattr(m2.config, "_attn_implementation", None)

    m3 = load_model(d, "eager", device)
    info["attn_impl_eager"] = getattr(m3.config, "_attn_implementation", None)
    check(info["attn_impl_eager"] in (None, "eager"), f"eager load gave {info['attn_impl_eager']}")
    xs = x[:2, :64]
    with torch.no_grad():
        l_sdpa = m2(input_ids=xs, use_cache=False).logits.float()
        out = m3(input_ids=xs, use_cache=False, output_attentions=True)
    l_eager = out.logits.float()
    diff = (l_sdpa - l_eager).abs().max().item()
    info["sdpa_vs_eager_max_logit_diff"] = diff
    check(diff < 2e-2, f"{d}: sdpa and eager logits differ by {diff}")
    atts = out.attentions
    check(atts is not None and len(atts) == n_layers,
          f"{d}: expected {n_layers} attention maps, got {None if atts is None else len(atts)}")
    a0 = atts[0].float()
    check(tuple(a0.shape) == (2, n_heads, 64, 64), f"{d}: attention shape {tuple(a0.shape)}")
    rows = a0.sum(-1)
    check(torch.allclose(rows, torch.ones_like(rows), atol=1e-3), f"{d}: attention rows do not sum to 1")
    upper = torch.triu(a0, diagonal=1).abs().max().item()
    check(upper < 1e-6, f"{d}: attention is not causal (upper triangle {upper})")

    info["tokenizer"] = check_tokenizer_dir(d, raw_tok, bos)
    from transformers import AutoTokenizer

    t = AutoTokenizer.from_pretrained(str(d))
    enc = t(PROMPTS[0], return_tensors="pt")
    info["tokenizer_returns"] = sorted(enc.keys())  # token_type_ids would be wrong for GPT-2
    if set(enc.keys()) != {"input_ids", "attention_mask"}:
        log(f"WARNING: {d.name}: tokenizer returns {sorted(enc.keys())}; pass only input_ids and "
            f"attention_mask to the models")
    with torch.no_grad():
        g = m2.generate(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device),
                        max_new_tokens=8, do_sample=False)
    check(g.shape[1] > enc["input_ids"].shape[1], f"{d}: generate produced nothing")
    del m2, m3
    return info


# ----------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------

def eval_loss(model, windows, lens, n_bytes: int, device, bs: int = 64) -> dict:
    import torch
    import torch.nn.functional as F

    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(windows), bs):
            x = windows[i:i + bs].to(device)
            ln = lens[i:i + bs].to(device)
            logits = model(input_ids=x, use_cache=False).logits.float()
            V = logits.size(-1)
            tgt = x[:, 1:].clone()
            pos = torch.arange(1, x.size(1), device=device).unsqueeze(0)
            tgt[pos >= ln.unsqueeze(1)] = -100
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), tgt.reshape(-1),
                                   ignore_index=-100, reduction="sum")
            total += loss.item()
            count += int((tgt != -100).sum().item())
    mean = total / max(1, count)
    return {"loss": mean, "ppl": math.exp(mean), "tokens": count,
            "bits_per_byte_approx": total / math.log(2) / max(1, n_bytes)}


def sink_sequences(doc_ids_lists, bos: int, T: int, n: int):
    import numpy as np

    seqs, used = [], []
    for split_name, doc_ids in doc_ids_lists:
        for i, d in enumerate(doc_ids):
            if len(d) + 1 >= T:
                seqs.append(np.concatenate(([bos], d[:T - 1])).astype(np.int64))
                used.append(f"{split_name}:{i}")
                if len(seqs) == n:
                    return np.stack(seqs), used
    return (np.stack(seqs) if seqs else None), used


def sink_stats(model_eager, seqs, threshold: float, device) -> dict:
    """Gu et al. first-token sink metric: alpha_0 = (1/T) sum_t A[t][0] per head;
    a head is a sink head iff alpha_0 > threshold."""
    import torch

    with torch.no_grad():
        out = model_eager(input_ids=seqs.to(device), use_cache=False, output_attentions=True)
    A = torch.stack([a.float() for a in out.attentions])  # [L, N, H, T, T]
    alpha = A[..., 0].mean(-1)                             # [L, N, H]
    sink = (alpha > threshold).float()
    L = A.shape[0]
    res = {
        "T": int(A.shape[-1]), "sequences": int(A.shape[1]), "threshold": threshold,
        "ratio_all_pct": sink.mean().item() * 100,
        "ratio_excluding_layer0_pct": (sink[1:].mean().item() * 100) if L > 1 else None,
        "ratio_per_layer_pct": [round(v * 100, 2) for v in sink.mean(dim=(1, 2)).tolist()],
        "per_sequence_ratio_std_pct": sink.mean(dim=(0, 2)).std().item() * 100,
        "alpha0_mean_per_head": [[round(v, 4) for v in row] for row in alpha.mean(1).tolist()],
        "alpha0_mean_all": alpha.mean().item(),
    }
    return res


def generate_samples(model, hf_tok, device, seed: int, max_new: int) -> list[dict]:
    import torch

    out = []
    for i, prompt in enumerate(PROMPTS):
        enc = hf_tok(prompt, return_tensors="pt")
        kw = {"input_ids": enc["input_ids"].to(device), "attention_mask": enc["attention_mask"].to(device)}
        n = kw["input_ids"].shape[1]
        with torch.no_grad():
            g = model.generate(**kw, max_new_tokens=max_new, do_sample=False)
            torch.manual_seed(seed + i)
            s = model.generate(**kw, max_new_tokens=max_new, do_sample=True, temperature=0.8,
                               top_k=40, top_p=1.0)
        out.append({
            "prompt": prompt,
            "greedy": hf_tok.decode(g[0, n:], skip_special_tokens=True),
            "sampled": hf_tok.decode(s[0, n:], skip_special_tokens=True),
            "greedy_hit_eos": bool((g[0, n:] == hf_tok.eos_token_id).any().item()),
            "sampled_hit_eos": bool((s[0, n:] == hf_tok.eos_token_id).any().item()),
        })
    return out


# ----------------------------------------------------------------------------
# model cards
# ----------------------------------------------------------------------------

def model_card(name: str, r: dict, rep: dict) -> str:
    c = r["config_summary"]
    v, te = r["eval"]["valid"], r["eval"]["test"]
    s = r["sinks"]
    corpus = rep["corpus"]
    L = []
    L.append(f"# {name}")
    L.append("")
    L.append(f"A tiny {c['architecture']} trained from scratch for attnscope's examples and tests "
             f"(issue #3). It is a toy: it writes plausible-looking English, Bible, dictionary and "
             f"documentation text, not facts.")
    L.append("")
    L.append("## Corpus")
    L.append("")
    L.append("Plain English text from Debian 12 packages (Jane Austen's novels, the King James and "
             "World English Bibles, GCIDE dictionary pages, the Jargon File, Linux 6.1 kernel docs, "
             "Python 3.11 docs), built by `tools/samples/extract_corpus.sh`; sources, licenses and "
             "sha256 sums in `samples/corpus/SOURCES.md`.")
    L.append("")
    L.append("| split | bytes | documents | tokens | sha256 |")
    L.append("| --- | ---: | ---: | ---: | --- |")
    for sp in ("train", "valid", "test"):
        ci = corpus[sp]
        L.append(f"| {sp} | {ci['bytes']:,} | {ci['docs']:,} | {ci.get('tokens', 0):,} | `{ci['sha256'][:16]}…` |")
    L.append("")
    tk = rep["tokenizer"]
    L.append("## Tokenizer")
    L.append("")
    L.append(f"Byte-level BPE (HF tokenizers), vocabulary {tk['vocab_size']:,}, {tk['pretokenizer']} "
             f"pre-tokenizer, trained on the train split. `{EOT}` (id {tk['bos_id']}) is BOS, EOS and "
             f"PAD; the post-processor prepends it to every input (`{EOT} $A`). "
             f"{tk['train_bytes_per_token']:.2f} bytes per token on the train split.")
    L.append("")
    L.append("## Architecture")
    L.append("")
    L.append("| | |")
    L.append("| --- | --- |")
    for k, val in c.items():
        L.append(f"| {k} | {val} |")
    L.append(f"| parameters | {r['params']:,} (embeddings tied) |")
    L.append(f"| weights | bfloat16 safetensors, {r['saved']['safetensors_bytes']:,} bytes |")
    L.append("")
    t = r["training"]
    L.append("## Training")
    L.append("")
    L.append(f"- {t['steps_run']:,} steps of {t['batch_size']} × {t['seq_len']} tokens "
             f"({t['tokens_seen']:,} tokens, {t['epochs']:.2f} epochs of the train split); "
             f"every sequence starts with BOS; documents are packed, each starting with BOS.")
    L.append(f"- AdamW (β 0.9/0.95, weight decay {t['weight_decay']} on matrices), peak LR {t['lr']}, "
             f"{t['warmup']} warmup steps, cosine decay to {t['min_lr_ratio']}×; gradient clip "
             f"{t['clip']}; bf16 autocast; seed {rep['determinism']['seed']}; "
             f"`torch.use_deterministic_algorithms`: {rep['determinism']['mode']}.")
    L.append(f"- Wall time {t['wall_s']:.0f} s on {rep['env']['device']} "
             f"({t['tokens_per_s']:,.0f} tokens/s).")
    L.append("")
    L.append("## Evaluation")
    L.append("")
    L.append("| | loss (nats/token) | perplexity | bits/byte (approx.) |")
    L.append("| --- | ---: | ---: | ---: |")
    L.append(f"| train (mean of last 100 steps) | {t['train_loss_last100']:.4f} | "
             f"{math.exp(t['train_loss_last100']):.2f} | |")
    L.append(f"| valid | {v['loss']:.4f} | {v['ppl']:.2f} | {v['bits_per_byte_approx']:.3f} |")
    L.append(f"| test | {te['loss']:.4f} | {te['ppl']:.2f} | {te['bits_per_byte_approx']:.3f} |")
    L.append("")
    L.append(f"Attention sinks (Gu et al.): {s['sequences']} held-out sequences of T = {s['T']} tokens "
             f"(BOS first), eager attention; a head is a first-token sink when "
             f"α₀ = (1/T) Σₜ A[t][0] > {s['threshold']}. Sink heads: **{s['ratio_all_pct']:.1f}%** of all "
             f"heads, **{s['ratio_excluding_layer0_pct']:.1f}%** outside layer 0; per layer: "
             f"{', '.join(f'{x:.0f}%' for x in s['ratio_per_layer_pct'])}.")
    L.append("")
    L.append("## Samples")
    L.append("")
    L.append(f"Greedy and sampled (temperature 0.8, top-k 40) continuations, {rep['args']['gen_tokens']} new tokens:")
    L.append("")
    for g in r["generations"]:
        L.append(f"- **{g['prompt']}**")
        L.append(f"  - greedy: {json.dumps(g['greedy'], ensure_ascii=False)}")
        L.append(f"  - sampled: {json.dumps(g['sampled'], ensure_ascii=False)}")
    L.append("")
    L.append("## Reproduce")
    L.append("")
    L.append("See `tools/samples/README.md`; this model came from")
    L.append("")
    L.append("```")
    L.append(rep["reproduce_command"])
    L.append("```")
    L.append("")
    L.append("License: the weights are derived from the corpus above, which includes GPL-2 material "
             "(Linux documentation, GCIDE); treat them as GPL-2-compatible data.")
    L.append("")
    return "\n".join(L)


# ----------------------------------------------------------------------------
# bundle
# ----------------------------------------------------------------------------

def bundle(out: Path, bdir: Path, name: str, part_bytes: int) -> list[str]:
    bdir.mkdir(parents=True, exist_ok=True)
    # everything lives under models/, so `tar -x -C samples` gives samples/models/...
    top = {"MODEL_CARD.md": "models/README.md", "train_report.json": "models/train_report.json",
           "train.log": "models/train.log"}
    members = []
    for p in sorted((out / "models").rglob("*")):
        members.append((p, p.relative_to(out).as_posix()))
    for f, arc in top.items():
        if (out / f).exists():
            members.append((out / f, arc))
    members.sort(key=lambda m: m[1])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for p, arc in members:
            ti = tar.gettarinfo(str(p), arcname=arc)
            ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = 0, 0, 0, "", ""
            ti.mode = 0o755 if p.is_dir() else 0o644
            if p.is_dir():
                tar.addfile(ti)
            else:
                with open(p, "rb") as f:
                    tar.addfile(ti, f)
    data = buf.getvalue()
    written = []
    base = f"{name}-models.tar"
    if len(data) <= part_bytes:
        (bdir / base).write_bytes(data)
        written.append(base)
    else:
        for i in range(0, len(data), part_bytes):
            fn = f"{base}.part{i // part_bytes:02d}"
            (bdir / fn).write_bytes(data[i:i + part_bytes])
            written.append(fn)
    for f in ("train_report.json", "MODEL_CARD.md"):
        if (out / f).exists():
            shutil.copy2(out / f, bdir / f)
            written.append(f)
    (bdir / f"{base}.sha256").write_text(f"{sha256_bytes(data)}  {base}\n")
    written.append(f"{base}.sha256")
    return written


# ----------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True, help="dir with train/valid/test .txt or .txt.gz")
    ap.add_argument("--out", type=Path, required=True, help="output dir (created; emptied first)")
    ap.add_argument("--bundle", type=Path, help="also write the tar parts + report + card + log here")
    ap.add_argument("--name", default="tinydeb")
    ap.add_argument("--models", default="llama,gpt2", help="comma list of llama,gpt2")
    ap.add_argument("--smoke", action="store_true",
                    help="preflight only (tokenizer on a corpus subset, 2 steps, save/load checks, "
                         "timing); no long training")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--determinism", choices=["strict", "warn_only", "off"], default="strict",
                    help="torch.use_deterministic_algorithms mode (strict falls back to warn_only, "
                         "recorded, if an op has no deterministic kernel)")
    ap.add_argument("--vocab-size", type=int, default=6000)
    ap.add_argument("--pretokenizer", choices=["gpt2", "llama3"], default="gpt2")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--llama-intermediate", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--steps", default="auto",
                    help="'auto' (from --time-budget and the measured step time), N (both models) "
                         "or N_LLAMA,N_GPT2; the steps run are recorded in train_report.json")
    ap.add_argument("--time-budget", type=float, default=170.0,
                    help="seconds of training per model for --steps auto")
    ap.add_argument("--deadline", type=float, default=500.0,
                    help="seconds after start by which all training must end; planned steps are "
                         "reduced (and recorded) if the measured speed would overrun it")
    ap.add_argument("--no-shrink", action="store_true", help="never reduce the requested steps")
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--bench-steps", type=int, default=20)
    ap.add_argument("--sink-threshold", type=float, default=0.3)
    ap.add_argument("--sink-T", type=int, default=64)
    ap.add_argument("--sink-n", type=int, default=100)
    ap.add_argument("--gen-tokens", type=int, default=48)
    ap.add_argument("--part-mib", type=int, default=15)
    ap.add_argument("--smoke-bytes", type=int, default=4_000_000)
    return ap.parse_args(argv)


def main(argv=None) -> int:
    global _LOG_FH
    a = parse_args(argv)
    _ARGS["a"] = a
    out = a.out
    if out.exists():
        if any(out.iterdir()) and not (out / "train.log").exists():
            fail(f"--out {out} exists, is not empty and is not a previous train.py output")
        shutil.rmtree(out)
    (out / "models").mkdir(parents=True)
    _LOG_FH = open(out / "train.log", "w", encoding="utf-8")
    log(f"train.py {' '.join(sys.argv[1:])}")

    import numpy as np
    import torch
    import tokenizers
    import transformers

    warnings.filterwarnings("once", message=r".*(deterministic|non-deterministic).*")
    kinds = [k.strip() for k in a.models.split(",") if k.strip()]
    check(all(k in ("llama", "gpt2") for k in kinds) and kinds, f"bad --models {a.models}")
    device = torch.device(a.device if (a.device != "cuda" or torch.cuda.is_available()) else "cpu")
    if a.device == "cuda" and device.type != "cuda":
        fail("CUDA requested but torch.cuda.is_available() is False (use --device cpu to debug)")
    amp = device.type == "cuda"
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"

    rep: dict = {
        "name": a.name, "smoke": a.smoke,
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "argv": sys.argv, "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
        "env": {"python": platform.python_version(), "torch": torch.__version__,
                "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                "numpy": np.__version__, "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
                "device": dev_name, "platform": platform.platform()},
        "determinism": {"seed": a.seed, "requested": a.determinism,
                        "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
                        "tf32": "torch defaults (off for fp32 matmuls)"},
        "timings_s": {}, "models": {},
    }
    try:
        import safetensors
        rep["env"]["safetensors"] = safetensors.__version__
    except Exception:  # noqa: BLE001
        pass
    log(f"device {dev_name}; torch {torch.__version__}, transformers {transformers.__version__}, "
        f"tokenizers {tokenizers.__version__}")
    det_mode = a.determinism
    set_determinism(det_mode)

    # ---------------- corpus
    t = time.time()
    splits, corpus_info = {}, {}
    for sp in ("train", "valid", "test"):
        splits[sp], corpus_info[sp] = read_split(a.corpus, sp)
        log(f"corpus {sp}: {corpus_info[sp]['docs']:,} docs, {corpus_info[sp]['bytes']:,} bytes, "
            f"sha256 {corpus_info[sp]['sha256'][:16]}")
    if a.smoke:
        acc, sub = 0, []
        for d in splits["train"]:
            sub.append(d)
            acc += len(d.encode("utf-8"))
            if acc >= a.smoke_bytes:
                break
        splits["train"] = sub
        corpus_info["train"] = dict(corpus_info["train"], smoke_subset_docs=len(sub), smoke_subset_bytes=acc)
        log(f"smoke: train subset {len(sub)} docs, {acc:,} bytes")
    rep["corpus"] = corpus_info
    rep["timings_s"]["read_corpus"] = time.time() - t

    # ---------------- tokenizer
    t = time.time()
    raw_tok, bos = train_tokenizer(splits["train"], a.vocab_size, a.pretokenizer)
    vocab = raw_tok.get_vocab_size()
    rep["timings_s"]["tokenizer_train"] = time.time() - t
    log(f"tokenizer: vocab {vocab}, bos id {bos}, trained in {time.time() - t:.1f}s")
    hf_tok = make_hf_tokenizer(raw_tok)
    tok_dir = out / "_tokenizer"
    save_tokenizer(hf_tok, tok_dir)
    try:
        tok_check = check_tokenizer_dir(tok_dir, raw_tok, bos)
    except Exception as e:  # noqa: BLE001
        log(f"tokenizer reload with tokenizer_class=PreTrainedTokenizerFast failed ({e}); "
            f"trying the class transformers wrote")
        TOKENIZER_CLASS["name"] = type(hf_tok).__name__
        save_tokenizer(hf_tok, tok_dir)
        tok_check = check_tokenizer_dir(tok_dir, raw_tok, bos)
    log(f"tokenizer round trip ok: {tok_check}")

    t = time.time()
    ids = {sp: encode_docs(raw_tok, splits[sp]) for sp in splits}
    for sp in ids:
        n_tok = int(sum(len(d) for d in ids[sp]))
        corpus_info[sp]["tokens"] = n_tok
        log(f"encoded {sp}: {n_tok:,} tokens ({corpus_info[sp]['bytes'] / max(1, n_tok):.2f} bytes/token)")
    rep["timings_s"]["encode"] = time.time() - t
    train_bytes = sum(len(d.encode("utf-8")) for d in splits["train"])
    rep["tokenizer"] = {
        "type": "byte-level BPE", "vocab_size": vocab, "pretokenizer": a.pretokenizer,
        "special_tokens": [EOT], "bos_id": bos, "eos_id": bos, "pad_id": bos,
        "post_processor": f"TemplateProcessing single='{EOT} $A'",
        "hf_class_in_tokenizer_config": TOKENIZER_CLASS["name"],
        "loaded_as": tok_check["class"],
        "train_bytes_per_token": train_bytes / max(1, corpus_info["train"]["tokens"]),
        "tokenizer_json_sha256": sha256_file(tok_dir / "tokenizer.json"),
    }

    T = a.seq_len
    tw, _tl, _ = make_windows(ids["train"], bos, T, keep_partial=False)
    train_windows = torch.from_numpy(tw).to(device)
    ev = {}
    for sp in ("valid", "test"):
        w, ln, _n = make_windows(ids[sp], bos, T, keep_partial=True)
        ev[sp] = (torch.from_numpy(w), torch.from_numpy(ln), corpus_info[sp]["bytes"])
    log(f"windows: train {tuple(train_windows.shape)}, valid {tuple(ev['valid'][0].shape)}, "
        f"test {tuple(ev['test'][0].shape)}")
    check(train_windows.shape[0] >= a.batch_size, "fewer training windows than one batch")
    check(bool((train_windows[:, 0] == bos).all().item()), "a training window does not start with BOS")
    seqs, used = sink_sequences([("valid", ids["valid"]), ("test", ids["test"])], bos, a.sink_T, a.sink_n)
    check(seqs is not None and len(seqs) >= min(20, a.sink_n), "too few held-out documents for the sink metric")
    seqs = torch.from_numpy(seqs)
    log(f"sink eval sequences: {len(seqs)} x {a.sink_T} (from {used[0]} .. {used[-1]})")

    cfgs = {k: make_config(k, a, vocab, bos) for k in kinds}

    # ---------------- preflight: every API the long run needs, on throwaway models
    t = time.time()
    pre = {}
    x0 = train_windows[:a.batch_size]
    for k in kinds:
        for attempt in range(2):
            try:
                model = build_model(k, cfgs[k], a.seed, device)
                opt = make_optimizer(model, a, device)
                l0, _ = train_step(model, opt, x0, amp, a.clip)
                l1, _ = train_step(model, opt, x0, amp, a.clip)
                l0, l1 = l0.item(), l1.item()
                break
            except RuntimeError as e:
                if attempt == 0 and det_mode == "strict" and "determinis" in str(e).lower():
                    log(f"strict determinism failed ({str(e).splitlines()[0][:200]}); using warn_only")
                    rep["determinism"]["strict_failure"] = str(e)[:500]
                    det_mode = "warn_only"
                    set_determinism(det_mode)
                    continue
                raise
        check(math.isfinite(l0) and math.isfinite(l1), f"{k}: non-finite loss in preflight")
        check(abs(l0 - math.log(vocab)) < 2.0, f"{k}: initial loss {l0:.3f} far from ln(V)={math.log(vocab):.3f}")
        pdir = out / "_preflight" / k
        save_model(model, hf_tok, pdir, bos)
        saved = check_saved(model, pdir, raw_tok, bos, x0, device, a.layers, a.heads)
        set_determinism(det_mode)
        # speed
        if device.type == "cuda":
            torch.cuda.synchronize()
        for _ in range(3):
            train_step(model, opt, train_windows[:a.batch_size], amp, a.clip)
        if device.type == "cuda":
            torch.cuda.synchronize()
        tb = time.time()
        sampler = Batches(train_windows.shape[0], a.batch_size, a.seed + 99)
        for _ in range(a.bench_steps):
            train_step(model, opt, train_windows[sampler.next().to(device)], amp, a.clip)
        if device.type == "cuda":
            torch.cuda.synchronize()
        step_s = (time.time() - tb) / a.bench_steps
        mem = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        pre[k] = {"loss_step0": l0, "loss_step1": l1, "params": n_params(model), "step_s": step_s,
                  "tokens_per_s": a.batch_size * T / step_s, "max_mem_mib": mem, "saved": saved}
        log(f"preflight {k}: params {n_params(model):,}, loss {l0:.3f} -> {l1:.3f}, save/load ok "
            f"({saved['dir_bytes']:,} bytes), {step_s * 1000:.1f} ms/step "
            f"({a.batch_size * T / step_s:,.0f} tok/s), "
            f"{a.time_budget / step_s:,.0f} steps per {a.time_budget:.0f}s")
        del model, opt
        if device.type == "cuda":
            torch.cuda.empty_cache()
    rep["preflight"] = pre
    rep["determinism"]["mode"] = det_mode
    rep["timings_s"]["preflight"] = time.time() - t
    shutil.rmtree(out / "_preflight", ignore_errors=True)

    if a.smoke:
        suggestion = {k: int(a.time_budget / pre[k]["step_s"]) // 50 * 50 for k in kinds}
        rep["suggested_steps"] = suggestion
        log(f"SMOKE OK. Suggested --steps {','.join(str(suggestion[k]) for k in kinds)} "
            f"for {a.time_budget:.0f}s per model")
        finish(rep, out, a)
        return 0

    # ---------------- plan steps
    if a.steps == "auto":
        planned = {k: max(100, int(a.time_budget / pre[k]["step_s"]) // 50 * 50) for k in kinds}
        steps_mode = "auto"
    else:
        vals = [int(v) for v in a.steps.split(",")]
        check(len(vals) in (1, len(kinds)), f"--steps needs 1 or {len(kinds)} values")
        planned = {k: (vals[0] if len(vals) == 1 else vals[i]) for i, k in enumerate(kinds)}
        steps_mode = "fixed"
    eval_overhead = 25.0 * len(kinds)
    projected = sum(planned[k] * pre[k]["step_s"] * 1.05 for k in kinds)
    remaining = a.deadline - (time.time() - T0) - eval_overhead
    requested = dict(planned)
    if projected > remaining and not a.no_shrink:
        f = max(0.05, remaining / projected)
        planned = {k: max(100, int(planned[k] * f) // 50 * 50) for k in kinds}
        log(f"WARNING: projected {projected:.0f}s of training exceeds the {remaining:.0f}s left before "
            f"--deadline; steps reduced from {requested} to {planned}")
    rep["steps_plan"] = {"mode": steps_mode, "requested": requested, "planned": planned,
                         "projected_s": projected, "remaining_s_at_plan": remaining}
    log(f"plan: steps {planned} ({steps_mode}); reproduce with --steps "
        f"{','.join(str(planned[k]) for k in kinds)}")

    # ---------------- train, save, evaluate
    for k in kinds:
        set_determinism(det_mode)
        name = f"{a.name}-{k}"
        steps = planned[k]
        warmup = min(a.warmup, max(1, steps // 10))
        model = build_model(k, cfgs[k], a.seed, device)
        opt = make_optimizer(model, a, device)
        sampler = Batches(train_windows.shape[0], a.batch_size, a.seed + 1)
        losses = torch.zeros(steps, device=device)
        hard_limit = max(a.time_budget * 1.6, steps * pre[k]["step_s"] * 1.5)
        log(f"training {name}: {steps} steps, warmup {warmup}, lr {a.lr}, batch {a.batch_size}x{T}")
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.time()
        steps_run, stopped_early = steps, False
        curve = []
        for step in range(steps):
            lr = lr_at(step, steps, a.lr, warmup, a.min_lr_ratio)
            for g in opt.param_groups:
                g["lr"] = lr
            x = train_windows[sampler.next().to(device)]
            loss, gnorm = train_step(model, opt, x, amp, a.clip)
            losses[step] = loss
            if (step + 1) % a.log_every == 0 or step == steps - 1:
                lo = max(0, step + 1 - a.log_every)
                lmean = losses[lo:step + 1].mean().item()
                if not math.isfinite(lmean):
                    fail(f"{name}: loss became {lmean} at step {step + 1}")
                el = time.time() - t
                curve.append([step + 1, round(lmean, 4)])
                log(f"  {name} step {step + 1:5d}/{steps}  loss {lmean:.4f}  lr {lr:.2e}  "
                    f"gnorm {gnorm.item():.2f}  epoch {sampler.epoch}  {el:.0f}s")
                if el > hard_limit and step + 1 < steps:
                    log(f"WARNING: {name} passed the hard time limit {hard_limit:.0f}s; stopping at "
                        f"step {step + 1} (NOT reproducible with --steps {steps})")
                    steps_run, stopped_early = step + 1, True
                    break
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall = time.time() - t
        last = losses[max(0, steps_run - 100):steps_run].mean().item()
        tokens_seen = steps_run * a.batch_size * T
        training = {
            "steps_planned": steps, "steps_run": steps_run, "stopped_early_by_time_guard": stopped_early,
            "batch_size": a.batch_size, "seq_len": T, "tokens_seen": tokens_seen,
            "epochs": tokens_seen / float(train_windows.numel()), "lr": a.lr, "warmup": warmup,
            "min_lr_ratio": a.min_lr_ratio, "weight_decay": a.weight_decay, "clip": a.clip,
            "wall_s": wall, "tokens_per_s": tokens_seen / wall, "train_loss_last100": last,
            "loss_curve": curve, "determinism": det_mode,
        }
        log(f"{name}: trained {steps_run} steps in {wall:.1f}s, last-100 loss {last:.4f}")

        # save (bf16) and verify the saved folder
        mdir = out / "models" / name
        save_model(model, hf_tok, mdir, bos)
        saved = check_saved(model, mdir, raw_tok, bos, x0, device, a.layers, a.heads)
        saved["safetensors_sha256"] = sha256_file(mdir / "model.safetensors")
        set_determinism("warn_only")  # evaluation needs no bitwise determinism guarantees
        m_eval = load_model(mdir, "sdpa", device)
        evals = {sp: eval_loss(m_eval, ev[sp][0], ev[sp][1], ev[sp][2], device) for sp in ("valid", "test")}
        log(f"{name}: valid loss {evals['valid']['loss']:.4f} (ppl {evals['valid']['ppl']:.2f}), "
            f"test loss {evals['test']['loss']:.4f} (ppl {evals['test']['ppl']:.2f})")
        m_eager = load_model(mdir, "eager", device)
        sinks = sink_stats(m_eager, seqs, a.sink_threshold, device)
        log(f"{name}: sink heads {sinks['ratio_all_pct']:.1f}% of all, "
            f"{sinks['ratio_excluding_layer0_pct']:.1f}% outside layer 0; per layer "
            f"{sinks['ratio_per_layer_pct']}")
        from transformers import AutoTokenizer

        tok_loaded = AutoTokenizer.from_pretrained(str(mdir))
        gens = generate_samples(m_eval, tok_loaded, device, a.seed, a.gen_tokens)
        for g in gens[:4]:
            log(f"  [{g['prompt']}] -> {g['greedy'][:120]!r}")
        cfgd = cfgs[k]
        summary = ({"architecture": "LlamaForCausalLM (GQA, RoPE, SwiGLU, RMSNorm)",
                    "hidden_size": cfgd.hidden_size, "layers": cfgd.num_hidden_layers,
                    "attention_heads": cfgd.num_attention_heads,
                    "key_value_heads": cfgd.num_key_value_heads, "head_dim": a.hidden // a.heads,
                    "intermediate_size": cfgd.intermediate_size, "rope_theta": 10000.0,
                    "max_position_embeddings": 1024, "vocab_size": vocab, "tie_word_embeddings": True}
                   if k == "llama" else
                   {"architecture": "GPT2LMHeadModel (learned positions, GELU MLP, LayerNorm)",
                    "n_embd": cfgd.n_embd, "n_layer": cfgd.n_layer, "n_head": cfgd.n_head,
                    "head_dim": a.hidden // a.heads, "n_inner": 4 * cfgd.n_embd, "n_positions": 1024,
                    "vocab_size": vocab, "tie_word_embeddings": True})
        rep["models"][name] = {"kind": k, "config_summary": summary, "params": n_params(model),
                               "training": training, "saved": saved, "eval": evals, "sinks": sinks,
                               "generations": gens}
        del model, opt, m_eval, m_eager
        if device.type == "cuda":
            torch.cuda.empty_cache()
        rep["timings_s"][f"model_{k}"] = time.time() - t

    rep["reproduce_command"] = (
        "tools/samples/extract_corpus.sh && python3 tools/samples/train.py --corpus build-corpus/carry "
        f"--out OUT --name {a.name} --models {a.models} --steps "
        f"{','.join(str(rep['models'][f'{a.name}-{k}']['training']['steps_run']) for k in kinds)} "
        f"--seed {a.seed} --batch-size {a.batch_size} --seq-len {a.seq_len} --lr {a.lr} "
        f"--vocab-size {a.vocab_size} --layers {a.layers} --hidden {a.hidden} --heads {a.heads} "
        f"--kv-heads {a.kv_heads} --llama-intermediate {a.llama_intermediate} --determinism {a.determinism}")
    cards = []
    for name, r in rep["models"].items():
        card = model_card(name, r, rep)
        (out / "models" / name / "README.md").write_text(card)
        cards.append(card)
    head = ["# attnscope sample models", "",
            f"Trained by `tools/samples/train.py` on {rep['env']['device']} "
            f"(torch {rep['env']['torch']}, transformers {rep['env']['transformers']}); "
            "all numbers are in `train_report.json`, the run's log in `train.log`.", "",
            "| model | parameters | steps | train loss | valid ppl | test ppl | sink heads (all / outside layer 0) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in rep["models"].items():
        head.append(f"| {name} | {r['params']:,} | {r['training']['steps_run']:,} | "
                    f"{r['training']['train_loss_last100']:.3f} | {r['eval']['valid']['ppl']:.2f} | "
                    f"{r['eval']['test']['ppl']:.2f} | {r['sinks']['ratio_all_pct']:.1f}% / "
                    f"{r['sinks']['ratio_excluding_layer0_pct']:.1f}% |")
    (out / "MODEL_CARD.md").write_text("\n".join(head) + "\n\n---\n\n" + "\n\n---\n\n".join(cards))
    finish(rep, out, a)
    return 0


def finish(rep: dict, out: Path, a) -> None:
    rep["timings_s"]["total"] = time.time() - T0
    shutil.rmtree(out / "_preflight", ignore_errors=True)
    (out / "train_report.json").write_text(json.dumps(rep, indent=1, ensure_ascii=False) + "\n")
    log(f"wrote {out / 'train_report.json'}")
    if a.bundle:
        files = bundle(out, a.bundle, a.name, a.part_mib * 2**20)
        log(f"bundle in {a.bundle}: {files}")
        if len(files) + 1 > 8:
            log(f"WARNING: {len(files) + 1} files in the bundle dir; at most 8 come back from the device")
    log(f"done in {time.time() - T0:.1f}s")
    if _LOG_FH is not None:
        _LOG_FH.flush()
        if a.bundle:
            shutil.copy2(out / "train.log", a.bundle / "train.log")


def _save_log_on_failure() -> None:
    a = _ARGS.get("a")
    if a is not None and a.bundle and (a.out / "train.log").exists():
        a.bundle.mkdir(parents=True, exist_ok=True)
        shutil.copy2(a.out / "train.log", a.bundle / "train.log")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit as e:
        if e.code not in (0, None):
            log(f"FAILED: {e.code}")
            _save_log_on_failure()
        raise
    except BaseException:  # noqa: BLE001
        log("FAILED:\n" + traceback.format_exc())
        _save_log_on_failure()
        raise
