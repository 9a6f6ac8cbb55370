"""What one decoding step costs against the number of rows in the batch.

    .venv/bin/python benchmarks/decode_rows.py [--rows 1,2,4,8] [--context 512] [--steps 16]

SmolLM2 loaded as `citi eval --precision bf16` loads it. For each row count, a KV cache of
--context tokens is filled once (not timed), then --steps single-token decoding steps are timed;
row counts are interleaved over --repeats rounds and the median per step is kept. Prints the
milliseconds per step and each row count's cost relative to one row. Dropping finished answers
from a generation batch (citi.evaluation.generation) saves time only in proportion to how much
a step's cost falls with fewer rows: on a CPU, where a step of a small model is dominated by
reading its weights, it falls little.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from citi.adapters import load_for_eval


def step_seconds(model, rows: int, context: int, steps: int) -> float:
    ids = torch.randint(100, 1000, (rows, context))
    with torch.inference_mode():
        out = model(input_ids=ids, use_cache=True)
        cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        start = time.perf_counter()
        for _ in range(steps):
            out = model(input_ids=token, past_key_values=cache, use_cache=True)
            cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        return (time.perf_counter() - start) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--rows", default="1,2,4,8")
    p.add_argument("--context", type=int, default=512)
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    args = p.parse_args()
    rows = [int(r) for r in args.rows.split(",")]
    if not rows or min(rows) < 1 or args.context < 1 or args.steps < 1 or args.repeats < 1:
        p.error("--rows, --context, --steps and --repeats must be positive")
    loaded = load_for_eval(args.model, None, "auto", "cpu", args.precision)
    model = loaded.model.eval()
    step_seconds(model, 1, 16, 2)  # warm-up
    times: dict[int, list[float]] = {r: [] for r in rows}
    for _ in range(args.repeats):
        for r in rows:
            times[r].append(step_seconds(model, r, args.context, args.steps))
    one = statistics.median(times[rows[0]])
    print(
        f"{args.model} {args.precision}, context {args.context}, {args.steps} steps, "
        f"median of {args.repeats} interleaved rounds, {torch.get_num_threads()} threads"
    )
    for r in rows:
        t = statistics.median(times[r])
        print(f"  rows {r:>3}: {1000 * t:7.1f} ms/step  x{t / one:.2f} of {rows[0]} row(s)")


if __name__ == "__main__":
    main()
