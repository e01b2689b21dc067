"""Reference outputs of the bundled sample models from Hugging Face transformers.

Loads samples/models/<name> (bf16 weights) in float32 with eager attention, runs a few fixed
prompts and writes tests/fixtures/samples/<name>.reference.safetensors with, per prompt i:
p{i}.input_ids (int64 [T]), p{i}.logits (f32 [T, vocab]), p{i}.attentions (f32 [L, H, T, T]).
The C++ golden test (tests/model/test_samples.cpp) loads the same folder and compares.
Run on a machine with transformers (the GPU machine): python3 tools/samples/make_reference.py
"""
import argparse
import json
from pathlib import Path

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

PROMPTS = [
    "It is a truth universally acknowledged, that a single man in possession of a good fortune",
    "In the beginning God created the heaven and the earth.",
    "def main():\n    print('hello, world')\n",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out_dir = args.out or args.root / "tests/fixtures/samples"
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for name in ["tinydeb-llama", "tinydeb-gpt2"]:
        d = args.root / "samples/models" / name
        tok = AutoTokenizer.from_pretrained(d)
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
        model.eval()
        tensors, meta = {}, {"prompts": PROMPTS, "transformers": transformers.__version__, "torch": torch.__version__}
        for i, text in enumerate(PROMPTS):
            ids = tok(text, return_tensors="pt").input_ids
            with torch.no_grad():
                o = model(ids, output_attentions=True)
            tensors[f"p{i}.input_ids"] = ids[0].contiguous()
            tensors[f"p{i}.logits"] = o.logits[0].float().contiguous()
            tensors[f"p{i}.attentions"] = torch.stack([a[0] for a in o.attentions]).float().contiguous()
        save_file(tensors, str(out_dir / f"{name}.reference.safetensors"))
        (out_dir / f"{name}.reference.json").write_text(json.dumps(meta, indent=2))
        print(name, {k: tuple(v.shape) for k, v in tensors.items()})


if __name__ == "__main__":
    main()
