"""Cost of the importance pass relative to a plain frozen-backbone forward+backward.

    .venv/bin/python benchmarks/importance.py [--model M] [--batch 4] [--seq 256]

Both variants run on the same model and the same batch (random tokens, the last quarter of each
sequence labelled), with every weight frozen and the embedding output requiring grad; the only
difference is the importance hooks on every component. Time: median of interleaved repetitions in
one process. Memory: each variant in a fresh subprocess (see _harness.py). Targets: time ratio
<= 1.15, peak-memory ratio <= 1.10.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    benchmark_parser,
    interleaved_median_times,
    make_batch,
    memory_per_variant,
    peak_memory,
)

from citi.components import list_components  # noqa: E402
from citi.importance.scores import frozen_with_input_grads, importance_sums  # noqa: E402
from citi.loss import label_token_loss  # noqa: E402
from citi.models import load_model  # noqa: E402


def plain_step(model, batch):
    with frozen_with_input_grads(model):
        label_token_loss(model, batch).backward()


def importance_step(model, batch, names):
    importance_sums(model, [batch], names)


def setup(args):
    loaded = load_model(args.model, dtype=args.dtype, device=args.device)
    batch = make_batch(len(loaded.tokenizer), args.batch, args.seq)
    batch = {k: v.to(loaded.device) for k, v in batch.items()}
    names = [c.name for c in list_components(loaded.model)]
    variants = {
        "plain": lambda: plain_step(loaded.model, batch),
        "importance": lambda: importance_step(loaded.model, batch, names),
    }
    return loaded, variants


def worker(args) -> None:
    loaded, variants = setup(args)
    # One tiny pass so lazy initialisation is not counted as the variant's memory.
    with torch.no_grad():
        loaded.model(input_ids=torch.tensor([[11, 12, 13]], device=loaded.device))
    added, peak = peak_memory(variants[args.worker], str(loaded.device))
    print(json.dumps({"added": added, "peak": peak}))


def main() -> None:
    p = benchmark_parser(__doc__, 5, ["plain", "importance"])
    args = p.parse_args()
    if args.worker:
        worker(args)
        return

    memory = memory_per_variant(__file__, ("plain", "importance"), args)
    loaded, variants = setup(args)
    t = interleaved_median_times(variants, args.repeats, loaded.device)
    tokens = args.batch * args.seq
    mib = 2**20
    print(
        f"model {args.model}, batch {args.batch}x{args.seq}, device {loaded.device}, "
        f"{args.repeats} repeats"
    )
    for name in variants:
        print(
            f"  {name:<11} {t[name]:7.3f} s/step  {tokens / t[name]:7.1f} tok/s  "
            f"added memory {memory[name]['added'] / mib:8.1f} MiB  "
            f"peak {memory[name]['peak'] / mib:8.1f} MiB"
        )
    time_ratio = t["importance"] / t["plain"]
    added_ratio = memory["importance"]["added"] / memory["plain"]["added"]
    peak_ratio = memory["importance"]["peak"] / memory["plain"]["peak"]
    print(f"time ratio            {time_ratio:.3f}  (target <= 1.15)")
    print(f"peak memory ratio     {peak_ratio:.3f}  (target <= 1.10; whole process)")
    print(f"added memory ratio    {added_ratio:.3f}  (memory the step adds over the loaded model)")


if __name__ == "__main__":
    main()
