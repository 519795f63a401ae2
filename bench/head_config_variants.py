#!/usr/bin/env python3
"""Per-head configs that vary one knob of a uniform sparse setting, for accuracy/speed comparisons on a real model.

  bench/head_config_variants.py --layers 24 --heads 14 --pattern interval-slash:1000,6096@0.95 --out DIR

writes DIR/<name>.json in the project's head-config format (src/model/head_config.h), one file per variant:
  local<N>    the setting with N nearest diagonals always kept (default 100)
  queries<M>  the setting estimated from the last M queries (default 64)
  dense<K>    the first K layers dense, the setting elsewhere
and prints the `config:FILE` settings, ';'-separated, for `sacc eval ... --sparse`.
"""
import argparse
import json
import os


def config(layers, heads, pattern, dense_layers=0, **estimation):
    rows = [[{"pattern": "dense" if layer < dense_layers else pattern}] * heads for layer in range(layers)]
    body = {"format": "sparseaccelerate.head-config", "version": 1, "model": "", "target": pattern,
            "block_q": 128, "block_k": 64, "layers": rows}
    body.update(estimation)
    return body


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, required=True)
    parser.add_argument("--heads", type=int, required=True, help="query heads per layer")
    parser.add_argument("--pattern", required=True)
    parser.add_argument("--local", default="512,1024", help="comma-separated local-diagonal counts")
    parser.add_argument("--queries", default="128,256", help="comma-separated estimating-query counts")
    parser.add_argument("--dense", default="1,2", help="comma-separated counts of leading dense layers")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    variants = {}
    for n in filter(None, args.local.split(",")):
        variants[f"local{n}"] = config(args.layers, args.heads, args.pattern, local_diagonals=int(n))
    for m in filter(None, args.queries.split(",")):
        variants[f"queries{m}"] = config(args.layers, args.heads, args.pattern, last_queries=int(m))
    for k in filter(None, args.dense.split(",")):
        variants[f"dense{k}"] = config(args.layers, args.heads, args.pattern, dense_layers=int(k))
    settings = []
    for name, body in variants.items():
        path = os.path.join(args.out, f"{name}.json")
        with open(path, "w") as f:
            json.dump(body, f)
        settings.append(f"config:{path}")
    print(";".join(settings))


if __name__ == "__main__":
    main()
