#!/usr/bin/env python3
"""Block-Cluster estimates against the best block index, on Q/K/V that `sacc eval recall --dump-qkv DIR` wrote.

  python3 bench/block_estimate_study.py DIR/layer_2.safetensors DIR/layer_12.safetensors ...

Needs NumPy (`python3 -m pip install numpy`; not a dependency of the build). For every query head and query
block (the kernel tile of src/attention/kernel_tile.h: 128 rows; key blocks of 64) it computes the exact
attention mass per key block, then for each estimate and threshold G selects the sink and diagonal blocks,
then blocks in descending estimated mass until G of the estimated mass, and prints the mean density (kept over
causal blocks), the mean recall (exact mass kept), the 5th-percentile query block and the lowest head.
Estimates: `meanpool` (pooled Q and K, what the planner runs),
`qmean_keys` (the pooled query against every key), `rowsN` (N exact query rows per block, the last row first) and
`oracle` (the exact mass itself: `sacc eval recall --sparse oracle@G`). fp32, so a fast study; the fp64 figures
are `sacc eval recall`'s (they agreed at 8192 tokens, bench/results/block_oracle_qwen.md).
"""
import json
import pathlib
import re
import struct
import sys

import numpy as np


def kernel_tile():
    """(Bq, Bk) from src/attention/kernel_tile.h, the one definition of the kernel tile."""
    text = (pathlib.Path(__file__).resolve().parent.parent / "src/attention/kernel_tile.h").read_text()
    return tuple(int(re.search(rf"{name} = (\d+);", text).group(1)) for name in ("kTileBlockQ", "kTileBlockK"))


BLOCK_Q, BLOCK_K = kernel_tile()
SAMPLED_ROWS = [4, 8, 16]
THRESHOLDS = [0.9, 0.95, 0.98, 0.99, 0.995, 0.999]


def load(path):
    """q [L, Hq, d], k [L, Hkv, d] as fp32 from the bf16 safetensors file."""
    raw = open(path, "rb").read()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + size])
    out = {}
    for name in ("q", "k"):
        begin, end = header[name]["data_offsets"]
        if header[name]["dtype"] != "BF16":
            sys.exit(f"{path}: {name} is {header[name]['dtype']}, expected BF16")
        bits = np.frombuffer(raw[8 + size + begin:8 + size + end], dtype=np.uint16).astype(np.uint32) << 16
        out[name] = bits.view(np.float32).reshape(header[name]["shape"])
    return out["q"], out["k"]


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def block_sums(p, num_k_blocks):
    """p [..., keys] -> [..., num_k_blocks] (keys past the end count as zero)."""
    pad = num_k_blocks * BLOCK_K - p.shape[-1]
    if pad:
        p = np.concatenate([p, np.zeros(p.shape[:-1] + (pad,), p.dtype)], -1)
    return p.reshape(p.shape[:-1] + (num_k_blocks, BLOCK_K)).sum(-1)


def head_masses(q, k):
    """Exact mean block mass M [qb, kb] and every estimate's block distribution for one head (q [L, d], k [L, d])."""
    length, dim = q.shape
    scale = 1.0 / np.sqrt(dim)
    num_q_blocks = (length + BLOCK_Q - 1) // BLOCK_Q
    num_k_blocks = (length + BLOCK_K - 1) // BLOCK_K
    names = ["meanpool", "qmean_keys"] + [f"rows{n}" for n in SAMPLED_ROWS]
    estimates = {name: np.zeros((num_q_blocks, num_k_blocks)) for name in names}
    exact = np.zeros((num_q_blocks, num_k_blocks))
    k_pooled = np.stack([k[b * BLOCK_K:(b + 1) * BLOCK_K].mean(0) for b in range(num_k_blocks)])
    for qb in range(num_q_blocks):
        first, end = qb * BLOCK_Q, min(length, (qb + 1) * BLOCK_Q)
        causal = (end - 1) // BLOCK_K + 1
        scores = (q[first:end] @ k[:end].T) * scale
        scores = np.where(np.arange(end)[None, :] <= np.arange(first, end)[:, None], scores, -np.inf)
        p = softmax(scores)
        exact[qb, :causal] = block_sums(p, num_k_blocks)[:, :causal].mean(0)
        q_pooled = q[first:end].mean(0)
        estimates["meanpool"][qb, :causal] = softmax((k_pooled[:causal] @ q_pooled) * scale)
        estimates["qmean_keys"][qb, :causal] = block_sums(softmax((k[:end] @ q_pooled) * scale), num_k_blocks)[:causal]
        for n in SAMPLED_ROWS:
            rows = np.arange(end - 1, first - 1, -max(1, (end - first) // n))[:n]
            estimates[f"rows{n}"][qb, :causal] = block_sums(p[rows - first], num_k_blocks)[:, :causal].mean(0)
    estimates["oracle"] = exact
    return exact, estimates


def select(estimate, exact, threshold, length):
    """Density, mean recall and per-block recalls of the threshold rule on one head."""
    kept = causal_total = 0
    recalls = []
    for qb in range(exact.shape[0]):
        causal = (min(length, (qb + 1) * BLOCK_Q) - 1) // BLOCK_K + 1
        chosen = {0} | set(range(max(1, qb * BLOCK_Q // BLOCK_K), causal))
        e = estimate[qb, :causal]
        mass = sum(e[j] for j in chosen)
        for j in np.argsort(-e, kind="stable"):
            if mass >= threshold:
                break
            if j not in chosen:
                chosen.add(j)
                mass += e[j]
        kept += len(chosen)
        causal_total += causal
        recalls.append(exact[qb, sorted(chosen)].sum())
    return kept / causal_total, float(np.mean(recalls)), recalls


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    results = {}
    for path in sys.argv[1:]:
        q, k = load(path)
        length, heads = q.shape[0], q.shape[1]
        group = heads // k.shape[1]
        for h in range(heads):
            exact, estimates = head_masses(q[:, h], k[:, h // group])
            for name, estimate in estimates.items():
                for threshold in THRESHOLDS:
                    results.setdefault((name, threshold), []).append(select(estimate, exact, threshold, length))
        print(f"{path}: done", file=sys.stderr, flush=True)
    print("| estimate | threshold | density | mean recall | 5th-percentile block | lowest head |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for (name, threshold), rows in sorted(results.items()):
        density = np.mean([r[0] for r in rows])
        recall = np.mean([r[1] for r in rows])
        blocks = np.percentile(np.concatenate([r[2] for r in rows]), 5)
        lowest = min(r[1] for r in rows)
        print(f"| {name} | {threshold} | {density:.3f} | {recall:.4f} | {blocks:.4f} | {lowest:.4f} |")


if __name__ == "__main__":
    main()
