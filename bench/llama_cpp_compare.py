#!/usr/bin/env python3
"""`sacc` on the CPU against llama.cpp's llama-bench on the same GGUFs, alternating engines, median of N.

Measures per model: prefill tok/s at each prompt length, decode ms/token (64 tokens after a short prompt),
peak RSS (/usr/bin/time's maximum resident set size of each run) and load time (wall time of a one-token
run: open, map or read the weights, one forward). Writes a Markdown table with machine, commit, date, load
average and the commands.

llama-bench: --llama-bench PATH, else `llama-bench` on PATH, else built from the pinned llama-cpp-python sdist
(pip download --no-binary) into bench/.llama.cpp (a few minutes on 2 cores). --sacc-only skips llama.cpp (its
columns then read n/a).

  bench/llama_cpp_compare.py --sacc build-cpu/tools/sacc --threads 2 \\
      --model .models/SmolLM2-135M-Instruct.Q4_1.gguf --model .models/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

LLAMA_CPP_PYTHON = "0.3.36"  # the version issue 16 compared against
ROOT = Path(__file__).resolve().parent.parent


def run_timed(cmd):
    """Runs cmd under /usr/bin/time -v; returns (stdout, wall seconds, peak RSS MiB)."""
    start = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return proc.stdout, wall, int(rss.group(1)) / 1024.0 if rss else float("nan")


def build_llama_bench(cache: Path) -> Path:
    binary = cache / "build" / "bin" / "llama-bench"
    if binary.exists():
        return binary
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
                    f"llama-cpp-python=={LLAMA_CPP_PYTHON}", "-d", str(cache)], check=True)
    sdist = next(cache.glob(f"llama_cpp_python-{LLAMA_CPP_PYTHON}.tar.gz"))
    with tarfile.open(sdist) as tar:
        tar.extractall(cache, filter="data")
    source = cache / f"llama_cpp_python-{LLAMA_CPP_PYTHON}" / "vendor" / "llama.cpp"
    subprocess.run(["cmake", "-S", str(source), "-B", str(cache / "build"), "-DCMAKE_BUILD_TYPE=Release",
                    "-DLLAMA_CURL=OFF", "-DGGML_OPENMP=OFF"], check=True)
    subprocess.run(["cmake", "--build", str(cache / "build"), "--target", "llama-bench", "-j2"], check=True)
    return binary


def llama_prefill(bench, model, threads, tokens):
    out, _, rss = run_timed([str(bench), "-m", model, "-t", str(threads), "-p", str(tokens), "-n", "0", "-r", "1",
                             "-o", "json"])
    return json.loads(out)[0]["avg_ts"], rss


def llama_decode(bench, model, threads, tokens):
    out, _, rss = run_timed([str(bench), "-m", model, "-t", str(threads), "-p", "0", "-n", str(tokens), "-r", "1",
                             "-o", "json"])
    return 1000.0 / json.loads(out)[0]["avg_ts"], rss


def llama_load(bench, model, threads):
    _, wall, _ = run_timed([str(bench), "-m", model, "-t", str(threads), "-p", "1", "-n", "0", "-r", "1"])
    return wall


def sacc_run(sacc, model, threads, prompt, new_tokens):
    out, wall, rss = run_timed([str(sacc), "-q", "generate", "--device", "cpu", "--attention", "dense", "--json",
                                "--threads", str(threads), "-m", model, "--prompt-tokens", str(prompt), "-n",
                                str(new_tokens)])
    return json.loads(out.strip().splitlines()[-1]), wall, rss


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sacc", default=str(ROOT / "build-cpu" / "tools" / "sacc"))
    p.add_argument("--llama-bench", default=None)
    p.add_argument("--model", action="append", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--prompts", default="512,2048,8192")
    p.add_argument("--decode-tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sacc-only", action="store_true", help="measure sacc only (no llama.cpp build or runs)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "cpu_vs_llamacpp.md"))
    a = p.parse_args()
    if a.sacc_only:
        bench = None
    else:
        bench = Path(a.llama_bench or shutil.which("llama-bench") or build_llama_bench(ROOT / "bench" / ".llama.cpp"))
    nan = (float("nan"), float("nan"))
    prompts = [int(x) for x in a.prompts.split(",")]
    median = statistics.median
    rows = []
    for model in a.model:
        name = Path(model).name
        for n in prompts:
            ours, theirs = [], []
            for _ in range(a.repeats):  # alternate the engines so background load hits both alike
                theirs.append(llama_prefill(bench, model, a.threads, n) if bench else nan)
                m, _, rss = sacc_run(a.sacc, model, a.threads, n, 1)
                ours.append((m["prefill_tokens_per_s"], rss))
            rows.append((name, f"prefill {n} (tok/s)", median(x[0] for x in theirs), median(x[0] for x in ours)))
            rows.append((name, f"peak RSS, prefill {n} (MiB)", median(x[1] for x in theirs),
                         median(x[1] for x in ours)))
        ours, theirs = [], []
        for _ in range(a.repeats):
            theirs.append(llama_decode(bench, model, a.threads, a.decode_tokens) if bench else nan)
            m, _, rss = sacc_run(a.sacc, model, a.threads, 16, a.decode_tokens)
            ours.append((m["mean_itl_s"] * 1000.0, rss))
        rows.append((name, f"decode {a.decode_tokens} tok (ms/token)", median(x[0] for x in theirs),
                     median(x[0] for x in ours)))
        loads_theirs, loads_ours = [], []
        for _ in range(a.repeats):
            loads_theirs.append(llama_load(bench, model, a.threads) if bench else float("nan"))
            loads_ours.append(sacc_run(a.sacc, model, a.threads, 1, 1)[1])
        rows.append((name, "load + 1 token, wall (s)", median(loads_theirs), median(loads_ours)))

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    lines = [
        "# sacc (CPU) against llama.cpp on the same GGUFs",
        "",
        f"* date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}; commit {commit}",
        f"* machine: {cpu}, {os.cpu_count()} logical CPUs; {a.threads} threads each; load average at the end "
        f"{os.getloadavg()[0]:.1f} (a shared build machine: timings taken under that load)",
        f"* llama.cpp: {bench or 'not run (--sacc-only)'} (llama-cpp-python {LLAMA_CPP_PYTHON} sdist unless on PATH)",
        f"* median of {a.repeats} alternating runs; peak RSS from /usr/bin/time -v",
        f"* command: `{' '.join([Path(sys.argv[0]).name] + sys.argv[1:])}`",
        "",
        "| model | measure | llama.cpp | sacc | sacc / llama.cpp |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name, what, theirs, ours in rows:
        ratio = "n/a" if theirs != theirs else f"{ours / theirs:.2f}"  # NaN: llama.cpp not run
        theirs_text = "n/a" if theirs != theirs else f"{theirs:.1f}"
        lines.append(f"| {name} | {what} | {theirs_text} | {ours:.1f} | {ratio} |")
    Path(a.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
