#!/usr/bin/env python3
"""Plots `sacc bench --json` results (HF cells merged in with --compare): TTFT and peak memory against context
length, log x, one line per method. For machines without gnuplot (`sacc bench --plot` uses gnuplot).

  python3 bench/plot_ttft.py ttft.json OUT_DIR      -> OUT_DIR/ttft.png, OUT_DIR/memory.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        cells = json.load(f)["cells"]
    methods = []
    for c in cells:
        if c["method"] not in methods:
            methods.append(c["method"])
    for name, label, value in (
        ("ttft.png", "TTFT (s)", lambda c: c["ttft_ms"]["median"] / 1000.0),
        ("memory.png", "peak GPU memory, all GPUs (GiB)", lambda c: c["peak_mib"]["total"] / 1024.0),
    ):
        plt.figure(figsize=(9, 5.5))
        for m in methods:
            points = sorted((c["ctx"], value(c)) for c in cells if c["method"] == m and c.get("status") == "ok")
            if points:
                plt.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=m)
        plt.xscale("log")
        plt.xlabel("context length (tokens)")
        plt.ylabel(label)
        plt.grid(True, which="both", alpha=0.3)
        plt.legend()
        plt.tight_layout()
        plt.savefig(f"{sys.argv[2]}/{name}", dpi=110)


if __name__ == "__main__":
    main()
