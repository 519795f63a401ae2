#!/usr/bin/env python3
"""Where a prefill's GPU time goes: sums an ncu CSV of kernel durations by stage.

    ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
        sacc -q bench ... > kernels.csv
    python3 bench/ncu_breakdown.py kernels.csv [--label sparse] [--skip N]

--skip drops the first N kernels (a warm-up run); --by-kernel lists each kernel (its short name, launches, total
and mean time) instead of stages, e.g. for a plan A/B under `ncu -k regex:...`. Kernel time only: launch gaps and host work are not in it.
Stages are recognised by the engine's kernel names (src/attention/cuda, src/runtime/cuda); cuBLAS/cuBLASLt
kernels are "linear layers".
"""
import argparse
import csv
import gzip
import io
import sys

# (stage, substrings of the kernel name), first match wins.
STAGES = [
    ("plan: interval-slash estimation", ("interval_slash_scores", "combine_row_stats")),
    ("plan: interval-slash selection", ("interval_slash_select",)),
    ("plan: block-cluster estimation", ("pool_kernel", "block_cluster_select")),
    ("plan: pattern choice", ("choose_pattern",)),
    ("plan: index build", ("build_index", "scan_counts", "work_item_costs")),
    ("attention (flash)", ("flash_forward",)),
    ("attention (other)", ("decode_split", "decode_combine", "eager", "cudnn", "fmha", "sdpa")),
    ("linear layers", ("gemm", "cublas", "cutlass", "xmma", "sm90_", "nvjet", "quantize_rows", "dequantize_outer")),
    ("norms, RoPE, SwiGLU, embedding", ("rms_norm", "bias_rope", "swiglu", "embed_kernel")),
]


def stage_of(name):
    low = name.lower()
    for stage, keys in STAGES:
        if any(k in low for k in keys):
            return stage
    return "other"


def short_name(name):
    """A kernel's function name with its template arguments, without return type, namespaces or parameters."""
    for anonymous in ("<unnamed>::", "(anonymous namespace)::"):
        name = name.replace(anonymous, "")
    base = name.split("(")[0].removeprefix("void ").strip()
    return base[base.rfind("::", 0, base.find("<") if "<" in base else len(base)) + 2 :] if "::" in base else base


def read_kernels(text):
    """[(kernel name, seconds)] in launch order from ncu's CSV (lines before the header are ncu's log)."""
    start = text.find('"ID"')
    if start < 0:
        raise SystemExit("ncu_breakdown: no CSV header (\"ID\",...) in the input")
    rows = []
    for row in csv.DictReader(io.StringIO(text[start:])):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        value = float(row["Metric Value"].replace(",", ""))
        unit = row.get("Metric Unit", "ns")
        scale = {"ns": 1e-9, "nsecond": 1e-9, "us": 1e-6, "usecond": 1e-6, "ms": 1e-3, "msecond": 1e-3}.get(unit, 1e-9)
        rows.append((row["Kernel Name"], value * scale))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv")
    ap.add_argument("--label", default="")
    ap.add_argument("--skip", type=int, default=0, help="kernels of a warm-up run to drop first")
    ap.add_argument("--by-kernel", action="store_true", help="one row per kernel instead of per stage")
    args = ap.parse_args()
    opener = gzip.open if args.csv.endswith(".gz") else open
    with opener(args.csv, "rt", errors="replace") as f:
        kernels = read_kernels(f.read())[args.skip:]
    if not kernels:
        raise SystemExit("ncu_breakdown: no kernel durations in " + args.csv)
    total = sum(t for _, t in kernels)
    by_stage, counts = {}, {}
    for name, t in kernels:
        s = short_name(name) if args.by_kernel else stage_of(name)
        by_stage[s] = by_stage.get(s, 0.0) + t
        counts[s] = counts.get(s, 0) + 1
    print(f"### {args.label or args.csv}: {len(kernels)} kernels, {total * 1e3:.2f} ms of kernel time")
    print()
    print(f"| {'kernel' if args.by_kernel else 'stage'} | kernels | ms | share | mean us |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for s, t in sorted(by_stage.items(), key=lambda kv: -kv[1]):
        print(f"| {s} | {counts[s]} | {t * 1e3:.2f} | {100 * t / total:.1f} % | {t * 1e6 / counts[s]:.1f} |")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
