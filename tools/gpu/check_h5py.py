"""Checks that docs/hdf5-schema.md's h5py snippet reads an attnscope capture with no custom code.

Usage: python3 tools/gpu/check_h5py.py capture.h5   (a file written by `attnscope capture`)
"""
import json
import sys

import h5py
import numpy as np

path = sys.argv[1]
# --- the snippet from docs/hdf5-schema.md, verbatim except the file name ---
f = h5py.File(path, "r")
run = f["runs/main"]
p = "000000"
tokens = [t.decode() for t in f[f"prompts/{p}/token_str"][()]]
A = run[f"prompts/{p}/blocks/3/attn/hook_pattern"][0]   # head 0 as stored, numpy float16 [query_pos, key_pos]
heads = run[f"prompts/{p}/blocks/3/attn/hook_pattern"].attrs["heads"]  # model head of each entry
assert run.attrs["complete"]                              # False: the run was interrupted
done = [k for k, g in run["prompts"].items() if g.attrs["complete"]]
# --- checks ---
assert A.dtype == np.float16, A.dtype
assert A.shape == (len(tokens), len(tokens)), (A.shape, len(tokens))
rows = A.astype(np.float64).sum(-1)
assert np.allclose(rows, 1.0, atol=5e-3), rows
assert np.all(np.triu(A, 1) == 0)
ids = f[f"prompts/{p}/tokens"][()]
assert ids.dtype == np.int32 and len(ids) == len(tokens)
print(json.dumps({
    "h5py": h5py.__version__, "tokens": tokens[:8], "map_dtype": str(A.dtype), "shape": A.shape,
    "row_sum_max_err": float(np.abs(rows - 1).max()), "heads": [int(h) for h in heads],
    "complete_prompts": done, "schema_version": f.attrs["schema_version"].decode()
    if isinstance(f.attrs["schema_version"], bytes) else str(f.attrs["schema_version"]),
    "hooks": json.loads(run.attrs["hooks"]),
}, indent=1))
