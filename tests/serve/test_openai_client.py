#!/usr/bin/env python3
"""`sacc serve` driven by the official OpenAI Python client (openai==1.54.0, pinned with its dependencies in
openai_client_requirements.txt and installed with --no-deps into a private folder, run with `python3 -I` so the
system's packages play no part). Exit 77 (ctest: skipped) when the model is absent or the client cannot be
installed (no network)."""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

SKIP = 77


def install_client(target, requirements):
    stamp = os.path.join(target, ".installed")
    with open(requirements, "rb") as f:
        wanted = f.read()
    if os.path.exists(stamp) and open(stamp, "rb").read() == wanted:
        return True
    result = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                             "--no-deps", "--upgrade", "--target", target, "-r", requirements],
                            capture_output=True, text=True)
    if result.returncode != 0:
        print(f"skipped: cannot install the openai client: {result.stderr.strip()[-500:]}")
        return False
    with open(stamp, "wb") as f:
        f.write(wanted)
    return True


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(process, port):
    for _ in range(1200):  # a hang guard (model loading on a busy machine), not a timing assertion
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health") as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sacc", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--target", required=True, help="private folder for the pinned client")
    parser.add_argument("--requirements", required=True)
    args = parser.parse_args()
    if not os.path.exists(args.model):
        print(f"skipped: {args.model} is absent (run scripts/fetch_models.sh)")
        return SKIP
    if not install_client(args.target, args.requirements):
        return SKIP
    sys.path.insert(0, args.target)
    import openai

    model_id = os.path.basename(args.model).removesuffix(".gguf")
    port = free_port()
    process = subprocess.Popen([args.sacc, "-q", "serve", "-m", args.model, "--device", "cpu", "--host",
                                "127.0.0.1", "--port", str(port), "--api-key", "k"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    failures = []

    def check(condition, what):
        if not condition:
            failures.append(what)

    try:
        if not wait_healthy(process, port):
            print("FAIL: the server did not come up")
            return 1
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0, timeout=600)
        check([m.id for m in client.models.list()] == [model_id], "models.list")

        prompt = "The capital of France is"
        plain = client.completions.create(model=model_id, prompt=prompt, max_tokens=8, temperature=0)
        text = plain.choices[0].text
        check(len(text) > 0, "completion text")
        check(plain.choices[0].finish_reason in ("stop", "length"), "completion finish_reason")
        check(plain.usage.prompt_tokens > 0 and 0 < plain.usage.completion_tokens <= 8, "completion usage")

        generated = subprocess.run([args.sacc, "-q", "generate", "--device", "cpu", "--json", "-m", args.model,
                                    "-n", "8", "-p", prompt], capture_output=True, text=True, timeout=600)
        lines = [line for line in generated.stdout.splitlines() if line.startswith("{")]
        check(generated.returncode == 0 and lines and json.loads(lines[-1])["text"] == text,
              f"completion {text!r} != sacc generate's {generated.stdout!r}")

        if len(text) >= 3:
            stop = text[2]  # a character the greedy text holds: the text ends before its first occurrence
            stopped = client.completions.create(model=model_id, prompt=prompt, max_tokens=8, temperature=0,
                                                stop=[stop])
            check(stopped.choices[0].text == text[:text.index(stop)], f"stop {stop!r}: {stopped.choices[0].text!r}")
            check(stopped.choices[0].finish_reason == "stop", "stop finish_reason")
        else:
            check(False, f"greedy text {text!r} too short for the stop check")

        streamed = "".join(c.choices[0].text for c in client.completions.create(
            model=model_id, prompt=prompt, max_tokens=8, temperature=0, stream=True))
        check(streamed == text, f"streamed completion {streamed!r} != {text!r}")

        messages = [{"role": "user", "content": prompt}]
        chat = client.chat.completions.create(model=model_id, messages=messages, max_tokens=8, temperature=0)
        answer = chat.choices[0].message.content
        check(chat.choices[0].message.role == "assistant" and len(answer) > 0, "chat message")
        check(chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens, "chat usage")
        deltas = []
        finish = None
        for chunk in client.chat.completions.create(model=model_id, messages=messages, max_tokens=8,
                                                    temperature=0, stream=True):
            deltas.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        check("".join(deltas) == answer, f"streamed chat {''.join(deltas)!r} != {answer!r}")
        check(finish == chat.choices[0].finish_reason, "streamed chat finish_reason")

        try:
            client.completions.create(model="no-such-model", prompt=prompt, max_tokens=1)
            check(False, "unknown model accepted")
        except openai.NotFoundError as e:
            check(e.body.get("code") == "model_not_found", f"404 body {e.body}")
        try:
            client.completions.create(model=model_id, prompt=prompt, max_tokens=1, n=2)
            check(False, "n = 2 accepted")
        except openai.BadRequestError as e:
            check(e.body.get("param") == "n", f"400 body {e.body}")
        bad_key = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="wrong", max_retries=0)
        try:
            bad_key.models.list()
            check(False, "wrong API key accepted")
        except openai.AuthenticationError:
            pass
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=600)
        check(process.returncode == 0, f"exit code {process.returncode} after SIGTERM:\n{output}")

    for f in failures:
        print(f"FAIL: {f}")
    print("ok" if not failures else f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
