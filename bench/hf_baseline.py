#!/usr/bin/env python3
"""HF transformers baseline for `sacc bench`: TTFT and peak GPU memory against context length.

Builds the same architecture as `sacc`'s built-in random configs (random bf16 weights: speed and memory do not
depend on weight values), then for each attention implementation and context length measures
TTFT = prompt token ids in host memory -> first sampled token id on the host (one forward pass over the prompt
with the LM head on the last position only, then argmax), and the peak memory the CUDA caching allocator saw plus
what cudaMemGetInfo reports as used.

Writes the JSON schema shared with `sacc bench -o json`:
  {"meta": {...}, "cells": [{"method", "ctx", "status": "ok"|"oom"|"error", "ttft_ms": {"median","min","max"},
                              "prefill_tok_s", "peak_mib": {"gpu0": ..., "total": ...}, "used_mib": {...}}]}

Run on the GPU machine (torch + transformers are there), e.g.
  python3 bench/hf_baseline.py --model llama-3.1-8b --ctx 1000,4000,8000,32000 --attn sdpa,eager -r 3 -o hf.json
A real GGUF (`--gguf FILE`) is loaded by transformers itself (dequantised to bf16; needs the `gguf` package, which
the GPU image lacks: carry its wheel), the same file `sacc` reads.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

# Mirrors src/model/model_config.cpp's random:<name> configs.
CONFIGS = {
    "llama-3.1-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                         num_key_value_heads=8, head_dim=128, vocab_size=128256, rope_theta=500000.0,
                         max_position_embeddings=131072, rms_norm_eps=1e-5, tie_word_embeddings=False,
                         rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                           high_freq_factor=4.0, original_max_position_embeddings=8192)),
    "llama-3.2-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                         num_key_value_heads=8, head_dim=64, vocab_size=128256, rope_theta=500000.0,
                         max_position_embeddings=131072, rms_norm_eps=1e-5, tie_word_embeddings=True,
                         rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0,
                                           high_freq_factor=4.0, original_max_position_embeddings=8192)),
    "smollm2-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, head_dim=64, vocab_size=49152, rope_theta=100000.0,
                         max_position_embeddings=8192, rms_norm_eps=1e-5, tie_word_embeddings=True),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="llama-3.1-8b", choices=sorted(CONFIGS))
    p.add_argument("--gguf", help="a real GGUF model file instead of --model's random weights")
    p.add_argument("--ctx", default="1000,4000,8000,16000,32000,64000,128000",
                   help="comma-separated prompt lengths in tokens")
    p.add_argument("--attn", default="sdpa,eager,flash_attention_2",
                   help="attn_implementation values; flash_attention_2 is skipped when not importable")
    p.add_argument("-r", "--repeats", type=int, default=3, help="timed repetitions per cell (median reported)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--out", default="-", help="JSON output path ('-' for stdout)")
    return p.parse_args()


def gpu_meta(torch):
    props = torch.cuda.get_device_properties(0)
    driver = "unknown"
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, check=True).stdout.strip().splitlines()[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        pass
    return dict(gpu=props.name, driver=driver, gpu_count=torch.cuda.device_count())


def build_model(torch, transformers, args, attn):
    if args.gguf:
        path = os.path.abspath(args.gguf)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.bfloat16,
            attn_implementation=attn).cuda()
        model.eval()
        return model
    name, seed = args.model, args.seed
    cfg = transformers.LlamaConfig(**CONFIGS[name], attn_implementation=attn)
    torch.manual_seed(seed)
    with torch.device("cuda"):
        model = transformers.LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.eval()
    return model


def measure_cell(torch, model, ctx, repeats, warmup, vocab):
    def once():
        ids_host = torch.randint(0, vocab, (1, ctx), dtype=torch.long)  # the prompt, in host memory
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.inference_mode():
            out = model(input_ids=ids_host.cuda(non_blocking=False), use_cache=True, logits_to_keep=1)
            token = int(out.logits[0, -1].argmax().item())  # first sampled token id on the host
        elapsed = (time.perf_counter() - start) * 1000.0
        del out
        return elapsed, token

    for _ in range(warmup):
        once()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = [once()[0] for _ in range(repeats)]
    peak = torch.cuda.max_memory_allocated() / 2**20
    free, total = torch.cuda.mem_get_info()
    return times, peak, (total - free) / 2**20


def main():
    args = parse_args()
    import torch
    import transformers

    if not torch.cuda.is_available():
        sys.exit("hf_baseline: no CUDA device visible")
    meta = dict(tool="hf_baseline.py", transformers=transformers.__version__, torch=torch.__version__,
                model=args.gguf or f"random:{args.model}", date=datetime.datetime.now(datetime.timezone.utc).isoformat(),
                command=" ".join(sys.argv), **gpu_meta(torch))
    cells = []
    for attn in [a for a in args.attn.split(",") if a]:
        if attn == "flash_attention_2":
            try:
                import flash_attn  # noqa: F401
            except ImportError:
                print("hf_baseline: flash_attention_2 skipped (flash_attn not importable)", file=sys.stderr)
                continue
        model = build_model(torch, transformers, args, attn)
        oom_seen = False
        for ctx in [int(c) for c in args.ctx.split(",") if c]:
            cell = dict(method=f"hf-{attn}", ctx=ctx)
            if oom_seen:  # a longer prompt than one that ran out of memory will too
                cell["status"] = "oom"
            else:
                try:
                    times, peak, used = measure_cell(torch, model, ctx, args.repeats, args.warmup,
                                                     model.config.vocab_size)
                    med = statistics.median(times)
                    cell.update(status="ok", ttft_ms=dict(median=med, min=min(times), max=max(times)),
                                prefill_tok_s=ctx / (med / 1000.0), peak_mib=dict(gpu0=peak, total=peak),
                                used_mib=dict(gpu0=used, total=used))
                except torch.OutOfMemoryError:
                    cell["status"] = "oom"
                    oom_seen = True
                torch.cuda.empty_cache()
            cells.append(cell)
            print(f"hf_baseline: {cell['method']} ctx={ctx}: "
                  + (f"{cell['ttft_ms']['median']:.1f} ms, peak {cell['peak_mib']['gpu0']:.0f} MiB"
                     if cell["status"] == "ok" else cell["status"]), file=sys.stderr, flush=True)
        del model
        torch.cuda.empty_cache()
    text = json.dumps(dict(meta=meta, cells=cells), indent=1)
    if args.out == "-":
        print(text)
    else:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
