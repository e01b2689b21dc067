#!/usr/bin/env python3
"""Regenerates the committed seed corpora in fuzz/corpus/ from the test fixtures.

Run from the repository root: python3 fuzz/make_seeds.py. Seeds are kept small (a few KiB) so
that mutations land in structure, not in bulk data. The store_reader seeds come from
samples/store/capture-v1.h5 and from make_seeds_store (see tools/fuzz.sh seeds)."""
import glob
import json
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def out(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def rel(p):
    return os.path.relpath(p, ROOT)


def slug(p):
    return rel(p).replace("tests/fixtures/", "").replace("/", "_")


DTYPE_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
              "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


def safetensors(header, data_len):
    h = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + bytes(data_len)


def shrink_safetensors(path, max_tensors=6):
    """The fixture's header with its real names, dtypes and metadata, every dimension cut to at
    most 2 and at most `max_tensors` tensors, laid out again; data zeroed."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    new = {}
    if "__metadata__" in header:
        new["__metadata__"] = header["__metadata__"]
    off = 0
    names = sorted(k for k in header if k != "__metadata__")[:max_tensors]
    for name in names:
        e = header[name]
        shape = [min(d, 2) for d in e["shape"]]
        nbytes = DTYPE_SIZE[e["dtype"]]
        for d in shape:
            nbytes *= d
        new[name] = {"dtype": e["dtype"], "shape": shape, "data_offsets": [off, off + nbytes]}
        off += nbytes
    return safetensors(new, off)


def main():
    if os.path.isdir(CORPUS):
        for t in os.listdir(CORPUS):
            if t != "store_reader":
                shutil.rmtree(os.path.join(CORPUS, t))

    # safetensors: shrunk real headers, plus hand-made edge cases.
    for p in sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/hf/*/model*.safetensors")))[:8]:
        out("safetensors", slug(p), shrink_safetensors(p))
    out("safetensors", "empty-header", safetensors({}, 0))
    out("safetensors", "all-dtypes", safetensors(
        {d: {"dtype": d, "shape": [1], "data_offsets": [i * 8, i * 8 + DTYPE_SIZE[d]]}
         for i, d in enumerate(DTYPE_SIZE)}, 8 * len(DTYPE_SIZE)))
    out("safetensors", "scalar-and-empty", safetensors(
        {"s": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]},
         "e": {"dtype": "F16", "shape": [0, 3], "data_offsets": [4, 4]}}, 4))

    # safetensors_index: the sharded fixture's index, and indexes over the harness's shards.
    out("safetensors_index", "tiny-llama-sharded",
        open(os.path.join(ROOT, "tests/fixtures/hf/tiny-llama-sharded/model.safetensors.index.json"),
             "rb").read())
    out("safetensors_index", "valid", json.dumps(
        {"metadata": {"total_size": 18}, "weight_map": {
            "a.x": "shard-a.safetensors", "a.y": "shard-a.safetensors", "b.x": "shard-b.safetensors"}},
        indent=2))
    out("safetensors_index", "wrong-shard", json.dumps({"weight_map": {
        "a.x": "shard-b.safetensors", "a.y": "shard-a.safetensors", "b.x": "shard-b.safetensors"}}))
    out("safetensors_index", "traversal", json.dumps({"weight_map": {"a.x": "../shard-a.safetensors"}}))

    # model_config: every config.json fixture.
    for p in sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/**/config.json"), recursive=True)):
        out("model_config", slug(p), open(p, "rb").read())

    # prompts: first byte picks the format (even: .txt, odd: .jsonl).
    txt = open(os.path.join(ROOT, "samples/prompts/prompts.txt"), "rb").read().splitlines(True)
    jsonl = open(os.path.join(ROOT, "samples/prompts/prompts.jsonl"), "rb").read().splitlines(True)
    out("prompts", "txt", b"\x00" + b"".join(txt[:6]))
    out("prompts", "jsonl", b"\x01" + b"".join(jsonl[:6]))
    out("prompts", "jsonl-ids", b"\x01" + b'{"id": 7, "text": "a\\u00e9\\ud83d\\ude00"}\r\n\n'
        b'{"text": "x", "extra": [1, {"y": null}]}\n')
    out("prompts", "txt-crlf-utf8", b"\x00" + "caf\u00e9\r\n\r\n \t\n\u6771\u4eac\n".encode())

    # tokenizer_json: the tiny tokenizers; with tokenizer_config.json after a NUL when present.
    for d in sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/tokenizers/*"))):
        tok = open(os.path.join(d, "tokenizer.json"), "rb").read()
        cfg_path = os.path.join(d, "tokenizer_config.json")
        if os.path.exists(cfg_path):
            tok += b"\x00" + open(cfg_path, "rb").read()
        out("tokenizer_json", os.path.basename(d), tok)

    # tokenizer_encode: first byte picks the tokenizer (8 of them) and add_special_tokens.
    texts = [b"Hello world", "caf\u00e9 \u6771\u4eac\u306f\U0001f363".encode(), b"  leading\tand\n\nnewlines ",
             b"<|endoftext|> <s> </s> [INST]", b"1234567 89,000.5", b"don't we'll I'M",
             b"\xff\xfe invalid \xc3", b"\xe2\x96\x81already metaspace"]
    for i, t in enumerate(texts):
        out("tokenizer_encode", "t%02d" % i, bytes([i % 8]) + t)
        out("tokenizer_encode", "t%02d-special" % i, bytes([8 + (i + 3) % 8]) + t)


if __name__ == "__main__":
    main()
