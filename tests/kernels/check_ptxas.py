#!/usr/bin/env python3
"""Compiles the flash-attention instance files again with `-Xptxas -v` (their own commands from the build's
compile database) and fails where ptxas reports what silently costs the Hopper body its speed:

* C7520, "wgmma.mma_async instructions are serialized": a wgmma under a branch ptxas cannot prove
  warpgroup-uniform makes it serialise every wgmma of the kernel (in the seventeenth session a 33-43 % slower
  dense kernel; bench/results/flash_schedule_h200.md);
* spill stores or loads in a Hopper kernel (flash_forward_sm90_kernel), whose consumers run at their register cap.

Usage: check_ptxas.py COMPILE_COMMANDS_JSON [FILE_GLOB]   (default glob: */attention/cuda/flash_inst_*.cu)
"""
import concurrent.futures
import fnmatch
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

HOPPER_KERNEL = "flash_forward_sm90_kernel"
ENTRY = re.compile(r"Compiling entry function '([^']+)'")
SPILLS = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")
SERIALIZED = re.compile(r"\(C7520\).*in the function '([^']+)'")


def ptxas_command(entry, object_path):
    """The entry's compile command writing to object_path, without dependency output, with ptxas verbose."""
    args = shlex.split(entry["command"]) if "command" in entry else list(entry["arguments"])
    out = []
    skip = 0
    for arg in args:
        if skip:
            skip -= 1
            continue
        if arg in ("-o", "-MT", "-MF"):
            skip = 1
            continue
        if arg == "-MD":
            continue
        out.append(arg)
    return out + ["-Xptxas", "-v", "-o", object_path]


def check(entry):
    """Problems ptxas reports for one file, and the number of kernels it compiled for a real architecture."""
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(ptxas_command(entry, os.path.join(tmp, "x.o")), cwd=entry["directory"],
                                capture_output=True, text=True)
    name = os.path.basename(entry["file"])
    if result.returncode != 0:
        return [f"{name}: compile failed:\n{result.stderr[-2000:]}"], 0
    problems, kernels, current = [], 0, None
    for line in result.stderr.splitlines():
        match = ENTRY.search(line)
        if match:
            current, kernels = match.group(1), kernels + 1
            continue
        match = SERIALIZED.search(line)
        if match:
            problems.append(f"{name}: wgmma serialised (C7520) in {match.group(1)}")
            continue
        match = SPILLS.search(line)
        if match and current and HOPPER_KERNEL in current and (int(match.group(1)) or int(match.group(2))):
            problems.append(f"{name}: {match.group(1)} bytes spill stores, {match.group(2)} bytes spill loads "
                            f"in {current}")
    return problems, kernels


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    pattern = sys.argv[2] if len(sys.argv) == 3 else "*/attention/cuda/flash_inst_*.cu"
    with open(sys.argv[1]) as f:
        entries = [e for e in json.load(f) if fnmatch.fnmatch(e["file"], pattern)]
    if not entries:
        print(f"check_ptxas: no file of the compile database matches {pattern}", file=sys.stderr)
        return 1
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(pool.map(check, entries))
    problems = [p for found, _ in results for p in found]
    kernels = sum(k for _, k in results)
    for problem in problems:
        print(problem)
    print(f"check_ptxas: {len(entries)} files, {kernels} kernels compiled, {len(problems)} problems")
    return 1 if problems or kernels == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
