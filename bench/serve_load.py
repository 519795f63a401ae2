#!/usr/bin/env python3
"""Load generator for `sacc serve` (OpenAI-compatible, streaming), standard library only.

Scenario "repeated-document" (issue 14, prefix KV reuse): the same N-token document followed by a different
~50-token question, sent one request at a time; each request's time to first token (TTFT: request sent ->
first streamed chunk) is reported. With the prefix cache on, every request after the first restores the
document's KV and prefills only its question (target on the H200 at 32K: second TTFT <= 10 % of the first).

    sacc serve -m model.gguf --port 8080 &          # --prefix-cache 0 for the baseline
    python3 bench/serve_load.py --url http://127.0.0.1:8080 --doc-tokens 32768 --questions 4 \\
        --json bench/results/serve_prefix_h200.json

The document is built to about --doc-tokens tokens from the server's own count (one calibration request on
an unrelated text, which shares no prefix with the document).

Scenario "concurrency" (continuous batching): for each level of --concurrency (default 1,8,32), that many
clients each stream --requests-per-client requests one after another, every prompt about --prompt-tokens
tokens and different from the first line on (no shared prefix). Reported per level: TTFT p50/p99, inter-token
latency (ITL: the gaps between streamed chunks) p50/p99, and output tokens/s (completion tokens of all requests
over the level's wall time).

    sacc serve -m model.gguf --max-batch 32 --prefix-cache 0 &
    python3 bench/serve_load.py --scenario concurrency --concurrency 1,8,32 --prompt-tokens 8192 \
        --max-tokens 128 --json bench/results/serve_concurrency_h200.json

Scenario "prefill-interference" (chunked prefill): --streams clients stream long answers; their ITL is
measured for --idle-seconds, then one more client sends a --long-tokens prompt, and the running streams' ITL
is measured again from that request's send to its first token (its prefill). Reported: both ITL p50/p99 and
their ratio (target on the H200 with a 32K prompt: during <= 3x idle).

    python3 bench/serve_load.py --scenario prefill-interference --streams 4 --long-tokens 32768

Where the later (hit) requests' time goes: /metrics is scraped after the first request and after the last, and
the difference of `sacc_request_phase_seconds` per phase (parse, tokenize, queue, lookup, reserve, restore,
prefill, sample, decode) gives each phase's mean over the later requests, printed beside the server's own time
to first token (arrival -> first token) and the client's (the rest: HTTP and the client).
"""
import argparse
import json
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request

FILLER = ("Entry {i}: the survey of the {topic} counted {birds} birds near marker {marker}, and the water "
          "was {state} that morning while the wind came from the {wind}.\n")
QUESTIONS = [
    "How many birds were counted near marker {m}, and what was the water like that morning?",
    "Which direction did the wind come from on the morning the survey reached marker {m}?",
    "Summarise what the survey recorded at marker {m} in one sentence, then name the topic.",
    "Was the water cold or clear at marker {m}, and how many birds were there at the time?",
    "List the markers near {m} where the count was above fifty, if any, and say why it matters.",
]

STYLE = ("Answer in the style of a field report, citing the entry number, the count and the weather, in two "
         "short sentences.")


def document(topic, entries, first=1, title="Field notes"):
    winds = ["north", "south", "east", "west"]
    lines = [f"{title} on the {topic}.\n"]
    for i in range(first, first + entries):
        lines.append(FILLER.format(i=i, topic=topic, birds=(i * 37) % 101, marker=i * 3,
                                   state="cold" if i % 3 == 0 else "clear", wind=winds[i % 4]))
    return "".join(lines)


def request(url, body, headers, timeout):
    data = json.dumps(body).encode()
    req = urllib.request.Request(url + "/v1/completions", data=data, headers=headers, method="POST")
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:  # the server's OpenAI-shaped error says why
        sys.exit(f"serve_load: HTTP {e.code} from {url}: {e.read().decode(errors='replace')}")


def complete(url, model, prompt, max_tokens, headers, timeout):
    """A non-streamed completion: (usage, text)."""
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0}
    with request(url, body, headers, timeout) as r:
        reply = json.load(r)
    return reply["usage"], reply["choices"][0]["text"]


def stream(url, model, prompt, max_tokens, headers, timeout, arrivals=None):
    """A streamed completion: TTFT (s), total time (s), text, usage. `arrivals`: a list that receives each
    text chunk's time.perf_counter() as it arrives."""
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True}
    start = time.perf_counter()
    ttft, text, usage = None, "", None
    with request(url, body, headers, timeout) as r:
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                break
            now = time.perf_counter()
            if ttft is None:
                ttft = now - start
            chunk = json.loads(data)
            if "error" in chunk:
                raise RuntimeError(chunk["error"])
            piece = chunk["choices"][0].get("text", "") if chunk.get("choices") else ""
            if piece and arrivals is not None:
                arrivals.append(now)
            text += piece
            usage = chunk.get("usage") or usage
    return ttft, time.perf_counter() - start, text, usage


# The server's phases before the first token, in order (tools/sacc/serve_phases.h), then decode.
PHASES = ["parse", "tokenize", "queue", "lookup", "reserve", "restore", "prefill", "sample"]
KEPT_METRICS = ("sacc_prefix_cache_", "sacc_request_phase_seconds_sum", "sacc_request_phase_seconds_count",
                "sacc_time_to_first_token_seconds_sum", "sacc_time_to_first_token_seconds_count",
                "sacc_prefill_density_sum", "sacc_prefill_density_count")


def metrics(url, headers):
    """The prefix-cache counters, and the sums and counts of the TTFT and phase histograms: {line name: value}."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url + "/metrics", headers=headers)) as r:
            text = r.read().decode()
    except urllib.error.URLError:
        return {}
    out = {}
    for line in text.splitlines():
        if line.startswith(KEPT_METRICS):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def mean_density(before, after):
    """Mean attention density of the prefills between two scrapes (None: none, or a server without it)."""
    n = after.get("sacc_prefill_density_count", 0) - before.get("sacc_prefill_density_count", 0)
    if n <= 0:
        return None
    return (after["sacc_prefill_density_sum"] - before.get("sacc_prefill_density_sum", 0)) / n


def phase_split(before, after, client_ttft_s):
    """Mean seconds per phase over the requests between two scrapes, the server's TTFT and the client's."""
    def mean(name, labels=""):
        total, count = f"{name}_sum{labels}", f"{name}_count{labels}"
        n = after.get(count, 0) - before.get(count, 0)
        return (after[total] - before[total]) / n if n > 0 else None

    split = {}
    for phase in PHASES + ["decode"]:
        split[phase] = mean("sacc_request_phase_seconds", f'{{phase="{phase}"}}')
    if any(v is None for v in split.values()):
        return None  # a server without phase timings
    split["server_ttft"] = mean("sacc_time_to_first_token_seconds")
    split["unaccounted"] = split["server_ttft"] - sum(split[p] for p in PHASES)
    split["client_ttft"] = client_ttft_s
    split["http_and_client"] = client_ttft_s - split["server_ttft"]
    return split


def print_split(split, requests):
    print(f"where the later requests' TTFT goes (mean of {requests}, server phases from /metrics):")
    for name in PHASES + ["unaccounted", "server_ttft", "http_and_client", "client_ttft"]:
        share = split[name] / split["client_ttft"] * 100
        print(f"  {name:16s} {split[name] * 1e3:9.3f} ms {share:6.1f} %")
    print(f"  {'decode':16s} {split['decode'] * 1e3:9.3f} ms (after the first token)")


def repeated_document(args, headers):
    # Calibrate entries -> tokens on the document's own entries under another first line (so the probes share
    # no cached prefix with it): entries cost more tokens as their numbers grow, so probe both ends of the
    # estimated range and take the larger (the document comes out under --doc-tokens, never over the context).
    probe_entries = 40
    topic = "Alder estuary"

    def tokens_per_entry(first):
        usage, _ = complete(args.url, args.model, document(topic, probe_entries, first, "Calibration"), 1,
                            headers, args.timeout)
        return usage["prompt_tokens"] / probe_entries

    start = tokens_per_entry(1)
    end = tokens_per_entry(max(1, int(args.doc_tokens / start) - probe_entries))
    entries = max(1, int(args.doc_tokens / max(start, end)))
    doc = document(topic, entries)
    rows = []
    scrapes = []
    for k in range(args.questions):
        # About 50 tokens, different from the first word on.
        question = ("\nQuestion: " + QUESTIONS[k % len(QUESTIONS)].format(m=3 * (k + 1)) + " " + STYLE +
                    "\nAnswer:")
        ttft, total, text, usage = stream(args.url, args.model, doc + question, args.max_tokens, headers,
                                          args.timeout)
        rows.append({"request": k + 1, "prompt_tokens": usage["prompt_tokens"] if usage else None,
                     "ttft_s": ttft, "total_s": total, "text": text})
        print(f"request {k + 1}: prompt {rows[-1]['prompt_tokens']} tok | TTFT {ttft * 1e3:9.1f} ms | "
              f"total {total:7.2f} s", flush=True)
        if k == 0 or k == args.questions - 1:
            scrapes.append(metrics(args.url, headers))  # after the first (miss) and after the last request
    first = rows[0]["ttft_s"]
    later = [r["ttft_s"] for r in rows[1:]]
    summary = {"first_ttft_s": first}
    if later:
        summary["later_ttft_median_s"] = statistics.median(later)
        summary["later_over_first"] = statistics.median(later) / first
        print(f"later TTFT median / first: {summary['later_over_first'] * 100:.1f} % "
              f"(issue 14 target at 32K on the H200: <= 10 %)")
        split = phase_split(scrapes[0], scrapes[-1], statistics.mean(later))
        if split:
            summary["later_phase_mean_s"] = split
            print_split(split, len(later))
    return {"rows": rows, "summary": summary}


def percentile(values, q):
    """The q-th percentile (0..100) by linear interpolation; None for no values."""
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def ms(seconds):
    return f"{seconds * 1e3:8.1f} ms" if seconds is not None else "       - ms"


def calibrated_document(args, headers, topic, tokens):
    """A document of about `tokens` tokens (never over): the server counts one probe's tokens."""
    probe_entries = 40
    usage, _ = complete(args.url, args.model, document(topic, probe_entries, 1, "Calibration"), 1, headers,
                        args.timeout)
    per_entry = usage["prompt_tokens"] / probe_entries * 1.1  # later entries' numbers cost a little more
    return lambda title: document(topic, max(1, int(tokens / per_entry)), 1, title)


def concurrency(args, headers):
    make = calibrated_document(args, headers, "Alder estuary", args.prompt_tokens)
    levels = []
    for level in [int(c) for c in args.concurrency.split(",")]:
        rows, failures, lock = [], [], threading.Lock()

        def client(c):
            for k in range(args.requests_per_client):
                arrivals = []
                # A different first line per request: no prompt shares a cached prefix with another.
                prompt = make(f"Field notes {level}-{c}-{k}") + "\nQuestion: summarise the survey.\nAnswer:"
                try:
                    ttft, total, _, usage = stream(args.url, args.model, prompt, args.max_tokens, headers,
                                                   args.timeout, arrivals)
                except (SystemExit, Exception) as e:  # an HTTP error (e.g. 429, queue full) ends this request only
                    with lock:
                        failures.append(str(e)[:200])
                    continue
                with lock:
                    rows.append({"ttft_s": ttft, "total_s": total,
                                 "itl_s": [b - a for a, b in zip(arrivals, arrivals[1:])],
                                 "completion_tokens": usage["completion_tokens"] if usage else len(arrivals)})

        scraped = metrics(args.url, headers)
        start = time.perf_counter()
        threads = [threading.Thread(target=client, args=(c,)) for c in range(level)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        ttfts = [r["ttft_s"] for r in rows if r["ttft_s"] is not None]
        itls = [g for r in rows for g in r["itl_s"]]
        tokens = sum(r["completion_tokens"] for r in rows)
        summary = {"concurrency": level, "requests": len(rows), "failed": len(failures),
                   "failures": sorted(set(failures))[:5], "wall_s": wall,
                   "ttft_p50_s": percentile(ttfts, 50), "ttft_p99_s": percentile(ttfts, 99),
                   "itl_p50_s": percentile(itls, 50), "itl_p99_s": percentile(itls, 99),
                   "output_tokens": tokens, "output_tokens_per_s": tokens / wall,
                   "prefill_density_mean": mean_density(scraped, metrics(args.url, headers))}
        levels.append(summary)
        density = summary["prefill_density_mean"]
        print(f"concurrency {level:3d}: TTFT p50 {ms(summary['ttft_p50_s'])} p99 {ms(summary['ttft_p99_s'])} | "
              f"ITL p50 {ms(summary['itl_p50_s'])} p99 {ms(summary['itl_p99_s'])} | "
              f"{summary['output_tokens_per_s']:8.1f} output tok/s | prefill density "
              f"{'n/a' if density is None else f'{density:.3f}'} ({len(rows)} requests"
              f"{f', {len(failures)} failed: ' + '; '.join(summary['failures']) if failures else ''})", flush=True)
    return {"levels": levels}


def prefill_interference(args, headers):
    long_prompt = calibrated_document(args, headers, "Birch lagoon", args.long_tokens)("Long document")
    long_prompt += "\nQuestion: which marker had the most birds?\nAnswer:"
    arrivals = [[] for _ in range(args.streams)]
    # Prompts that invite a long answer: the streams should outlast the long prompt's prefill.
    counting = "Count from 1 to 100000, one number per line, without stopping:\n1\n2\n3\n"

    def runner(i):
        stream(args.url, args.model, f"Stream {i}. " + counting, args.stream_tokens, headers, args.timeout,
               arrivals[i])

    threads = [threading.Thread(target=runner, args=(i,), daemon=True) for i in range(args.streams)]
    for t in threads:
        t.start()
    while any(len(a) < 8 for a in arrivals):  # every stream is decoding
        if not any(t.is_alive() for t in threads):
            sys.exit("serve_load: the streams ended before they were all decoding")
        time.sleep(0.05)
    idle_begin = time.perf_counter()
    time.sleep(args.idle_seconds)
    idle_end = time.perf_counter()
    long_ttft, _, _, usage = stream(args.url, args.model, long_prompt, 1, headers, args.timeout)
    long_end = idle_end + long_ttft

    def gaps(begin, end):
        # Gaps that end inside [begin, end]: a stream waiting on a prefill step shows it in the gap that ends
        # after that step.
        return [b - a for arr in arrivals for a, b in zip(arr, arr[1:]) if begin < b <= end]

    idle, during = gaps(idle_begin, idle_end), gaps(idle_end, long_end)
    running = sum(1 for arr in arrivals if arr and arr[-1] >= long_end)
    summary = {"streams": args.streams, "streams_running_at_the_end": running,
               "long_prompt_tokens": usage["prompt_tokens"] if usage else None, "long_ttft_s": long_ttft,
               "idle_itl_p50_s": percentile(idle, 50), "idle_itl_p99_s": percentile(idle, 99),
               "during_itl_p50_s": percentile(during, 50), "during_itl_p99_s": percentile(during, 99),
               "idle_gaps": len(idle), "during_gaps": len(during)}
    if summary["idle_itl_p50_s"] and summary["during_itl_p50_s"]:
        summary["p50_ratio"] = summary["during_itl_p50_s"] / summary["idle_itl_p50_s"]
        summary["p99_ratio"] = summary["during_itl_p99_s"] / summary["idle_itl_p99_s"]
    print(f"long prompt {summary['long_prompt_tokens']} tok, TTFT {long_ttft:.2f} s; "
          f"{running}/{args.streams} streams still running at its first token")
    print(f"running streams' ITL idle:   p50 {ms(summary['idle_itl_p50_s'])} p99 {ms(summary['idle_itl_p99_s'])}"
          f" ({len(idle)} gaps)")
    print(f"running streams' ITL during: p50 {ms(summary['during_itl_p50_s'])} "
          f"p99 {ms(summary['during_itl_p99_s'])} ({len(during)} gaps)")
    if "p50_ratio" in summary:
        print(f"during / idle: p50 {summary['p50_ratio']:.2f}x, p99 {summary['p99_ratio']:.2f}x "
              f"(issue 14 target at 32K on the H200: <= 3x)")
    return {"summary": summary}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--model", default=None, help="model id (default: the first of /v1/models)")
    p.add_argument("--api-key", default=None)
    p.add_argument("--scenario", default="repeated-document",
                   choices=["repeated-document", "concurrency", "prefill-interference"])
    p.add_argument("--doc-tokens", type=int, default=4096, help="document length in tokens (approximate)")
    p.add_argument("--questions", type=int, default=4, help="requests: the document + a different question")
    p.add_argument("--max-tokens", type=int, default=None,
                   help="tokens per request (default 16 for repeated-document, 128 for concurrency)")
    p.add_argument("--concurrency", default="1,8,32", help="concurrency: comma-separated client counts")
    p.add_argument("--requests-per-client", type=int, default=4, help="concurrency: requests per client")
    p.add_argument("--prompt-tokens", type=int, default=8192, help="concurrency: prompt length (approximate)")
    p.add_argument("--streams", type=int, default=4, help="prefill-interference: running streams")
    p.add_argument("--stream-tokens", type=int, default=4096, help="prefill-interference: each stream's max")
    p.add_argument("--idle-seconds", type=float, default=5.0, help="prefill-interference: idle window")
    p.add_argument("--long-tokens", type=int, default=32768, help="prefill-interference: the long prompt")
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()
    headers = {"Content-Type": "application/json"}
    if args.api_key:
        headers["Authorization"] = "Bearer " + args.api_key
    if args.model is None:
        with urllib.request.urlopen(urllib.request.Request(args.url + "/v1/models", headers=headers)) as r:
            args.model = json.load(r)["data"][0]["id"]
    if args.max_tokens is None:
        args.max_tokens = 128 if args.scenario == "concurrency" else 16
    result = {"scenario": args.scenario, "url": args.url, "model": args.model, "max_tokens": args.max_tokens}
    if args.scenario == "repeated-document":
        result.update({"doc_tokens": args.doc_tokens, "questions": args.questions})
        result.update(repeated_document(args, headers))
        result["prefix_cache_metrics"] = metrics(args.url, headers)
    elif args.scenario == "concurrency":
        result.update({"prompt_tokens": args.prompt_tokens, "requests_per_client": args.requests_per_client})
        result.update(concurrency(args, headers))
    else:
        result.update({"long_tokens": args.long_tokens, "streams": args.streams})
        result.update(prefill_interference(args, headers))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
