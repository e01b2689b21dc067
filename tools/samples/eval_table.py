#!/usr/bin/env python3
"""Markdown tables from the JSON reports of tools/samples/eval_report.sh.

    python3 tools/samples/eval_table.py docs/results
"""
import json
import sys
from pathlib import Path


def fmt(e, sign=False):
    s = "+" if sign else ""
    return f"{e['value']:{s}.4f} [{e['ci95'][0]:{s}.4f}, {e['ci95'][1]:{s}.4f}]"


def describe(j):
    parts = []
    for m in j.get("interventions", {}).get("methods", []):
        p = dict(m["params"])
        if "heads" in p:
            p["heads"] = f"{len(p['heads'])} heads"
        p.pop("calibration", None)
        keep = {k: v for k, v in p.items() if k in ("beta", "tau", "heads", "dims", "u", "s", "t", "mode", "f", "rho")}
        parts.append(m["method"] + " " + ", ".join(f"{k}={v}" for k, v in keep.items()))
    return "; ".join(parts) or "-"


def main(root):
    root = Path(root)
    for mdir in sorted(p for p in root.iterdir() if p.is_dir()):
        print(f"\n### {mdir.name}\n")
        heads = mdir / "act-heads.json"
        if heads.exists():
            h = json.loads(heads.read_text())
            print(f"ACT head search: {len(h['candidates'])} candidates on {h['items']} dev items, "
                  f"baseline {h['metric']} {h['baseline']:.4f}, kept {len(h['heads'])} heads "
                  f"({', '.join(f'{l}.{k}' for l, k in h['heads'])}), {h['seconds']:.0f} s\n")
        print("| run | items | metric | baseline [95% CI] | with [95% CI] | difference [95% CI] | P(not better) |")
        print("|---|---|---|---|---|---|---|")
        for f in sorted(mdir.glob("*.json")):
            if f.name == "act-heads.json":
                continue
            j = json.loads(f.read_text())
            if "method" not in j:
                print(f"| {f.stem} | {j['items']} | {j['metric']} | {fmt(j['baseline'])} | | | |")
                continue
            print(f"| {f.stem}: {describe(j)} | {j['items']} | {j['metric']} | {fmt(j['baseline'])} | "
                  f"{fmt(j['method'])} | {fmt(j['difference'], True)} | {j['p_not_better']:.3f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/results")
