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

Where the later (hit) requests' time goes: /metrics is scraped after the first request and after the last, and
the difference of `sacc_request_phase_seconds` per phase (parse, tokenize, queue, lookup, reserve, restore,
prefill, sample, decode) gives each phase's mean over the later requests, printed beside the server's own time
to first token (arrival -> first token) and the client's (the rest: HTTP and the client).
"""
import argparse
import json
import statistics
import sys
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


def stream(url, model, prompt, max_tokens, headers, timeout):
    """A streamed completion: TTFT (s), total time (s), text, usage."""
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
            if ttft is None:
                ttft = time.perf_counter() - start
            chunk = json.loads(data)
            if "error" in chunk:
                raise RuntimeError(chunk["error"])
            text += chunk["choices"][0].get("text", "")
            usage = chunk.get("usage") or usage
    return ttft, time.perf_counter() - start, text, usage


# The server's phases before the first token, in order (tools/sacc/serve_phases.h), then decode.
PHASES = ["parse", "tokenize", "queue", "lookup", "reserve", "restore", "prefill", "sample"]
KEPT_METRICS = ("sacc_prefix_cache_", "sacc_request_phase_seconds_sum", "sacc_request_phase_seconds_count",
                "sacc_time_to_first_token_seconds_sum", "sacc_time_to_first_token_seconds_count")


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


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--model", default=None, help="model id (default: the first of /v1/models)")
    p.add_argument("--api-key", default=None)
    p.add_argument("--scenario", default="repeated-document", choices=["repeated-document"])
    p.add_argument("--doc-tokens", type=int, default=4096, help="document length in tokens (approximate)")
    p.add_argument("--questions", type=int, default=4, help="requests: the document + a different question")
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()
    headers = {"Content-Type": "application/json"}
    if args.api_key:
        headers["Authorization"] = "Bearer " + args.api_key
    if args.model is None:
        with urllib.request.urlopen(urllib.request.Request(args.url + "/v1/models", headers=headers)) as r:
            args.model = json.load(r)["data"][0]["id"]
    result = {"scenario": args.scenario, "url": args.url, "model": args.model, "doc_tokens": args.doc_tokens,
              "questions": args.questions, "max_tokens": args.max_tokens}
    result.update(repeated_document(args, headers))
    result["prefix_cache_metrics"] = metrics(args.url, headers)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
