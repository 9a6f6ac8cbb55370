"""Load test of ``citi serve``: N concurrent openai clients, a fixed number of tool requests.

    .venv/bin/python benchmarks/serve_load.py [--model smollm2-135m-instruct] [--requests 32]
        [--max-tokens 32] [--clients 1,4,16] [--max-batch 16] [--rounds 3] [--transformers-serve]

Starts ``citi serve MODEL`` (a run, an export or a base model) on a free loopback port, then for
each N sends the same --requests chat requests (a user question plus two tools; greedy,
max_tokens fixed) from N threads, each with the official ``openai`` client. Prints requests/s,
completion tokens/s, p50/p95 latency, errors, the server's largest batch and its RSS before and
after each level, then tokens/s at the largest N over N = 1 (target >= 3x: batching works).

Memory: a thread samples the server's resident memory (psutil, the server process and its
children) every 0.2 s through the whole run. The largest level is run --rounds times; the first
round is the warm-up (it allocates the largest batch's KV cache). Memory is flat when the peak RSS
of the last round is less than 5% above the peak of the first (``FLAT_GROWTH``); a leak (a KV
cache or per-request tensors kept) grows it round after round.

With --transformers-serve the same requests also go through ``transformers serve`` on the same
base weights (which must be a folder it can load), and the ratio of citi's tokens/s to its
tokens/s is printed (target >= 0.9). transformers serve renders with the model's own template,
which for SmolLM2 drops the tools: compare with --plain (no tools) so both servers see the same
prompts.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "book_table",
            "description": "Book a restaurant table",
            "parameters": {
                "type": "object",
                "properties": {"place": {"type": "string"}, "people": {"type": "integer"}},
                "required": ["place", "people"],
            },
        },
    },
]
FLAT_GROWTH = 0.05  # peak RSS of the last round over the first: memory is flat below 5% growth
CITIES = ["Paris", "Lagos", "Lima", "Osaka", "Oslo", "Quito", "Perth", "Dakar"]


def questions(n: int) -> list[str]:
    return [
        f"What is the weather in {CITIES[i % len(CITIES)]} today?"
        if i % 2 == 0
        else f"Book a table for {2 + i % 5} at Chez {CITIES[i % len(CITIES)]}."
        for i in range(n)
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children (transformers serve runs its model apart)."""
    import psutil

    try:
        process = psutil.Process(pid)
        processes = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in processes:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:  # a child that ended between the listing and the read
            pass
    return total / 2**20


class MemorySampler:
    """Samples the server's RSS every ``period`` seconds in a thread, for the whole run."""

    def __init__(self, pid: int, period: float = 0.2):
        self.pid, self.period = pid, period
        self.samples: list[tuple[float, float]] = []  # (time, MB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), _rss_mb(self.pid)))
            self._stop.wait(self.period)

    def window(self, start: float, end: float) -> list[float]:
        return [mb for t, mb in self.samples if start <= t <= end]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def memory_verdict(first: list[float], last: list[float]) -> dict:
    """First-round vs last-round RSS of the largest level (see the module docstring)."""
    growth = max(last) / max(first) - 1
    return {
        "first_round_peak_mb": round(max(first)),
        "last_round_peak_mb": round(max(last)),
        "first_round_mean_mb": round(statistics.mean(first)),
        "last_round_mean_mb": round(statistics.mean(last)),
        "growth": round(growth, 4),
        "flat": growth < FLAT_GROWTH,
    }


def start(command: list[str], port: int, wait: float = 600):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return process
        except OSError:
            if process.poll() is not None:
                sys.exit(f"server exited: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.5)
    process.kill()
    sys.exit("server did not come up")


def run_level(
    client, model: str, prompts: list[str], clients: int, max_tokens: int, tools=TOOLS
) -> dict:
    def one(question: str):
        t0 = time.perf_counter()
        try:
            reply = client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": question}],
                **({"tools": tools} if tools else {}),
                max_tokens=max_tokens,
                temperature=0,
            )
            return time.perf_counter() - t0, reply.usage.completion_tokens, None
        except Exception as err:  # counted, not raised: the load test reports errors
            return time.perf_counter() - t0, 0, repr(err)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, prompts))
    wall = time.perf_counter() - t0
    latencies = sorted(r[0] for r in results)
    tokens = sum(r[1] for r in results)
    return {
        "clients": clients,
        "requests": len(prompts),
        "errors": sum(r[2] is not None for r in results),
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(prompts) / wall, 3),
        "tokens_per_s": round(tokens / wall, 1),
        "p50_s": round(statistics.median(latencies), 3),
        "p95_s": round(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 3),
        "first_error": next((r[2] for r in results if r[2]), None),
    }


def health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        return json.loads(response.read())


def main() -> None:
    import openai

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="times the largest level runs; its first and last rounds' RSS say whether memory "
        "is flat (default 3)",
    )
    parser.add_argument("--transformers-serve", action="store_true")
    parser.add_argument(
        "--plain",
        action="store_true",
        help="send no tools (a model whose template drops tools, like SmolLM2's, then gets the "
        "same prompt from both servers)",
    )
    parser.add_argument("--serve-arg", action="append", default=[], help="extra citi serve args")
    args = parser.parse_args()
    tools = None if args.plain else TOOLS
    levels = [int(n) for n in args.clients.split(",")]
    prompts = questions(args.requests)

    port = _free_port()
    command = [sys.executable, "-m", "citi.cli.main", "serve", args.model, "--port", str(port)]
    command += ["--max-batch", str(args.max_batch), "--name", "bench", *args.serve_arg]
    server = start(command, port)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
    memory = MemorySampler(server.pid)
    rows, rounds = [], []
    try:
        run_level(client, "bench", prompts[:2], 1, args.max_tokens, tools)  # warm up
        schedule = levels + [levels[-1]] * max(args.rounds - 1, 0)
        for i, n in enumerate(schedule):
            before, t0 = _rss_mb(server.pid), time.monotonic()
            row = run_level(client, "bench", prompts, n, args.max_tokens, tools)
            after = _rss_mb(server.pid)
            row.update(rss_before_mb=round(before), rss_after_mb=round(after))
            row["largest_batch"] = health(port)["largest_batch"]
            if i >= len(levels) - 1:
                rounds.append([before, *memory.window(t0, time.monotonic()), after])
                row["round"] = len(rounds)
            if i < len(levels):
                rows.append(row)
            print(json.dumps({"server": "citi", **row}), flush=True)
    finally:
        memory.stop()
        server.terminate()
        server.wait(30)
    first, last = rows[0], rows[-1]
    print(
        f"citi serve: tokens/s at {last['clients']} clients / at {first['clients']}: "
        f"{last['tokens_per_s'] / max(first['tokens_per_s'], 1e-9):.2f}x (target >= 3)"
    )
    if len(rounds) > 1:
        verdict = memory_verdict(rounds[0], rounds[-1])
        print(json.dumps({"memory": verdict, "rounds": len(rounds)}), flush=True)
        print(
            f"memory over {len(rounds)} rounds of {levels[-1]} clients: peak RSS "
            f"{verdict['first_round_peak_mb']} -> {verdict['last_round_peak_mb']} MB "
            f"({verdict['growth']:+.1%}): {'flat' if verdict['flat'] else 'NOT flat'} "
            f"(rule: growth < {FLAT_GROWTH:.0%})"
        )
    if args.transformers_serve:
        compare(args, prompts, levels[-1], last, tools)


def compare(args, prompts, clients: int, citi_row: dict, tools) -> None:
    """The same requests through ``transformers serve`` on the same base weights."""
    import openai

    from citi.models import load_model

    source = load_model(args.model, device="cpu").source  # a folder transformers can load
    port = _free_port()
    exe = Path(sys.executable).parent / "transformers"
    command = [str(exe), "serve", source, "--port", str(port), "--host", "127.0.0.1"]
    command += ["--continuous-batching", "--device", "cpu", "--dtype", "float32"]
    # Its paged KV cache is sized from free memory by default, which on a shared machine got its
    # model process killed while loading; 256 blocks of 32 tokens hold 8192 tokens, far more than
    # the requests need.
    command += ["--cb-num-blocks", "256", "--cb-block-size", "32"]
    server = start(command, port)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
    try:
        run_level(client, source, prompts[:2], 1, args.max_tokens, tools)
        row = run_level(client, source, prompts, clients, args.max_tokens, tools)
    finally:
        server.terminate()
        server.wait(30)
    print(json.dumps({"server": "transformers serve", **row}), flush=True)
    ratio = citi_row["tokens_per_s"] / max(row["tokens_per_s"], 1e-9)
    print(f"citi / transformers serve tokens/s at {clients} clients: {ratio:.2f}x (target >= 0.9)")


if __name__ == "__main__":
    main()
