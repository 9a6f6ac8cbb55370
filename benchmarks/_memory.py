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
