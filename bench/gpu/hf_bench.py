#!/usr/bin/env python3
"""Hugging Face side of the GPU benchmarks (bench/gpu/README.md), and the random-init models
both sides load. No downloads: models are built from configs on the GPU.

  hf_bench.py make1b DIR          random-init Llama-3.2-1B-shape model, bf16, save_pretrained
                                  (+ a small tokenizer.json so capture can tokenize text)
  hf_bench.py make8b DIR          Llama-3-8B-shape weights (random normal 0.02, norms 1), bf16
  hf_bench.py forward DIR L...    G1: SDPA forward, full logits and logits_to_keep=1
  hf_bench.py attn DIR L OUT.h5   G4: output_attentions=True (eager) + h5py writing every map
  hf_bench.py eager DIR L...      G3 reference: eager attention with output_attentions until OOM
Prints one JSON object per line.
"""
import json
import os
import shutil
import statistics
import sys
import time

import torch

LLAMA_1B = dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                num_attention_heads=32, num_key_value_heads=8, head_dim=64,
                max_position_embeddings=131072, rms_norm_eps=1e-5, tie_word_embeddings=True,
                bos_token_id=128000, eos_token_id=128001)
LLAMA_8B = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                max_position_embeddings=131072, rms_norm_eps=1e-5, tie_word_embeddings=False,
                bos_token_id=128000, eos_token_id=128001)
ROPE = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}


def emit(**kw):
    print(json.dumps(kw), flush=True)


def config(shape):
    from transformers import LlamaConfig
    try:
        cfg = LlamaConfig(**shape, rope_parameters=ROPE)
    except TypeError:
        cfg = LlamaConfig(**shape, rope_theta=ROPE["rope_theta"], rope_scaling=ROPE)
    return cfg


def make1b(out):
    from transformers import LlamaForCausalLM
    torch.manual_seed(0)
    cfg = config(LLAMA_1B)
    t0 = time.time()
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(out)
    here = os.path.dirname(os.path.abspath(__file__))
    tok = os.path.join(here, "..", "..", "samples", "models", "tinydeb-llama", "tokenizer.json")
    shutil.copy(tok, os.path.join(out, "tokenizer.json"))
    emit(step="make1b", seconds=round(time.time() - t0, 1),
         params=sum(p.numel() for p in model.parameters()))


def make8b(out):
    from safetensors.torch import save_file
    cfg = config(LLAMA_8B)
    os.makedirs(out, exist_ok=True)
    cfg.save_pretrained(out)
    t0 = time.time()
    g = torch.Generator(device="cuda").manual_seed(0)
    d, f, H, G, dh = 4096, 14336, 32, 8, 128

    def rnd(*shape):
        return (torch.randn(*shape, generator=g, device="cuda", dtype=torch.float32) * 0.02).to(
            torch.bfloat16).cpu()

    sd = {"model.embed_tokens.weight": rnd(128256, d), "lm_head.weight": rnd(128256, d),
          "model.norm.weight": torch.ones(d, dtype=torch.bfloat16)}
    for i in range(32):
        p = f"model.layers.{i}."
        sd[p + "self_attn.q_proj.weight"] = rnd(H * dh, d)
        sd[p + "self_attn.k_proj.weight"] = rnd(G * dh, d)
        sd[p + "self_attn.v_proj.weight"] = rnd(G * dh, d)
        sd[p + "self_attn.o_proj.weight"] = rnd(d, H * dh)
        sd[p + "mlp.gate_proj.weight"] = rnd(f, d)
        sd[p + "mlp.up_proj.weight"] = rnd(f, d)
        sd[p + "mlp.down_proj.weight"] = rnd(d, f)
        sd[p + "input_layernorm.weight"] = torch.ones(d, dtype=torch.bfloat16)
        sd[p + "post_attention_layernorm.weight"] = torch.ones(d, dtype=torch.bfloat16)
    save_file(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    emit(step="make8b", seconds=round(time.time() - t0, 1),
         params=sum(v.numel() for v in sd.values()))


def load(d, attn):
    from transformers import LlamaForCausalLM
    m = LlamaForCausalLM.from_pretrained(d, dtype=torch.bfloat16, attn_implementation=attn)
    return m.cuda().eval()


def median_time(fn, warm, reps):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def forward(d, lens):
    m = load(d, "sdpa")
    for L in lens:
        torch.manual_seed(1)
        ids = torch.randint(0, m.config.vocab_size, (1, L), device="cuda")
        for keep in (0, 1):
            reps = 5 if L >= 16384 else 10
            with torch.inference_mode():
                t = median_time(lambda: m(input_ids=ids, use_cache=False, logits_to_keep=keep), 2, reps)
            emit(bench="G1", side="hf", L=L, logits_to_keep=keep, median_s=round(t, 6))


def attn(d, L, out):
    import h5py
    import numpy as np
    m = load(d, "eager")
    torch.manual_seed(1)
    ids = torch.randint(0, m.config.vocab_size, (1, L), device="cuda")
    for rep in range(1):
        if os.path.exists(out):
            os.remove(out)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.inference_mode():
            r = m(input_ids=ids, use_cache=False, output_attentions=True, logits_to_keep=1)
        torch.cuda.synchronize()
        t_fwd = time.perf_counter() - t0
        nbytes = 0
        with h5py.File(out, "w") as f:
            for l, a in enumerate(r.attentions):
                arr = a[0].to(torch.float16).cpu().numpy()
                f.create_dataset(f"layer{l}/pattern", data=arr)
                nbytes += arr.nbytes
        t = time.perf_counter() - t0
        emit(bench="G4", side="hf", rep=rep, L=L, seconds=round(t, 3), forward_s=round(t_fwd, 3),
             map_bytes=nbytes, file_bytes=os.path.getsize(out), map_GBps=round(nbytes / t / 1e9, 2))
        del r
    os.remove(out)


def eager(d, lens):
    m = load(d, "eager")
    for L in lens:
        ids = torch.randint(0, m.config.vocab_size, (1, L), device="cuda")
        torch.cuda.reset_peak_memory_stats()
        try:
            with torch.inference_mode():
                r = m(input_ids=ids, use_cache=False, output_attentions=True, logits_to_keep=1)
            torch.cuda.synchronize()
            emit(bench="G3", side="hf-eager", L=L, ok=True,
                 peak_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2))
            del r
        except torch.OutOfMemoryError as e:
            emit(bench="G3", side="hf-eager", L=L, ok=False, error=str(e).split("\n")[0][:120])
            break
        torch.cuda.empty_cache()


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make1b":
        make1b(args[0])
    elif cmd == "make8b":
        make8b(args[0])
    elif cmd == "forward":
        forward(args[0], [int(x) for x in args[1:]])
    elif cmd == "attn":
        attn(args[0], int(args[1]), args[2])
    elif cmd == "eager":
        eager(args[0], [int(x) for x in args[1:]])
    else:
        sys.exit("unknown command " + cmd)
