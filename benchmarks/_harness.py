"""Peak-memory measurement shared by the benchmarks.

On CUDA: ``torch.cuda.max_memory_allocated``. On CPU, where torch keeps no such counter, a thread
samples the process RSS every millisecond while the measured function runs; the reported figure is
the peak RSS during the call minus the RSS just before it (the memory the call added). Each
variant should run in a fresh process so that memory freed by an earlier variant and kept by the
allocator does not hide a later variant's growth.
"""

from __future__ import annotations

import threading
import time

import torch


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")


def peak_memory(fn, device: str) -> tuple[int, int]:
    """(bytes added at the peak of ``fn()``, absolute peak bytes) on ``device``."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        return peak - before, peak
    before = _rss_bytes()
    peak = before
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(0.001)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        fn()
    finally:
        done.set()
        thread.join()
    peak = max(peak, _rss_bytes())
    return peak - before, peak


def memory_per_variant(script: str, variants, args) -> dict[str, dict]:
    """Run ``script --worker VARIANT`` in a fresh process per variant; each prints its memory
    as one JSON line (see ``peak_memory``)."""
    import json
    import subprocess
    import sys

    memory = {}
    for variant in variants:
        cmd = [
            sys.executable,
            script,
            "--worker",
            variant,
            "--model",
            args.model,
            "--batch",
            str(args.batch),
            "--seq",
            str(args.seq),
            "--dtype",
            args.dtype,
        ]
        if args.device:
            cmd += ["--device", args.device]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        memory[variant] = json.loads(out.strip().splitlines()[-1])
    return memory


def interleaved_median_times(fns: dict, repeats: int, device) -> dict[str, float]:
    """Median seconds per call of each function, after one warm-up call each; the variants are
    interleaved within every repetition so that machine drift hits them alike."""
    import statistics

    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def make_batch(vocab: int, batch: int, seq: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tokens with the last quarter of each sequence labelled, tool/general alternating."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, vocab, (batch, seq), generator=g)
    labels = ids.clone()
    labels[:, : seq * 3 // 4] = -100
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": labels,
        "task_type": torch.tensor([1, 0] * (batch // 2) + [1] * (batch % 2)),
    }


def benchmark_parser(doc: str, repeats: int, workers):
    """The options every benchmark takes (model, batch shape, repeats, dtype, device)."""
    import argparse

    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--repeats", type=int, default=repeats)
    p.add_argument("--dtype", default="auto")
    p.add_argument("--device", default=None)
    p.add_argument("--worker", choices=list(workers), help=argparse.SUPPRESS)
    return p
