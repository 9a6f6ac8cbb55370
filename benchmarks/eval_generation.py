"""Ways to batch `citi eval`'s generation, side by side: one `generate` call per batch, finished
answers dropped every few tokens, a static KV cache, transformers' continuous batching.

    .venv/bin/python benchmarks/eval_generation.py [--prompts 8] [--max-new-tokens 64]

One process, the model loaded once as `citi eval --precision P` loads it, the first --prompts
GSM8K and --prompts API-Bank level-2 prompts rendered as `citi eval` renders them, greedy, each
task's stop strings, one call per task (as `citi eval` runs them), batch --batch:
  batched     citi.evaluation.generation.generate with prune_every=None: prompts sorted by
              length, left padding, one transformers `generate` call per batch (dynamic KV
              cache), every row computed until the batch's longest answer ends
  pruned      the same, --prune-every new tokens per `generate` call, the finished answers and
              their KV-cache rows dropped between calls (citi's default)
  static      `batched` with `cache_implementation="static"` (a KV cache preallocated to the
              longest prompt + max new tokens, no compile)
  continuous  `model.generate_batch` (transformers' continuous batching: paged KV cache, no
              padding, a finished answer's slot taken by the next prompt at once), at most
              --batch prompts decoding together; it knows no stop strings, so each answer runs
              to the end-of-turn token or max new tokens and is then cut at the earliest stop
              string, as `generate` cuts it
tokens/s = generated tokens (the answers as returned, re-tokenised) / seconds. --repeats N
interleaves N rounds and keeps each engine's median seconds. `pruned4`, `pruned16`, ... in
--engines are `pruned` at another --prune-every. Prints each engine's ratio to
`batched` and which answers differ from `batched` (their index and first differing character).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--data-dir", default=None, help="citi's data directory (CITI_DATA_DIR)")
    p.add_argument("--prompts", type=int, default=8, help="per evaluation dataset")
    p.add_argument("--batch", type=int, default=8, help="generation batch size")
    p.add_argument("--max-new-tokens", type=int, default=None, help="cap each task's own")
    p.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    p.add_argument("--engines", default="batched,pruned,static,continuous")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--prune-every", type=int, default=8)
    return p.parse_args(argv)


def requests(args, tokenizer) -> list[tuple[list[str], int, tuple[str, ...]]]:
    """One (rendered prompts, max new tokens, stop strings) group per task."""
    from citi.data.render import render_prompt
    from citi.evaluation.harness import load_task_examples
    from citi.evaluation.registry import get_task

    groups = []
    for name in ("gsm8k", "apibank-l2"):
        task = get_task(name)
        new = min(task.max_new_tokens, args.max_new_tokens or task.max_new_tokens)
        examples = load_task_examples(task, args.data_dir, args.prompts)
        groups.append(
            ([render_prompt(tokenizer, task.prompt(e)) for e in examples], new, task.stop)
        )
    return groups


def batched(model, tokenizer, groups, batch: int, **kw) -> list[str]:
    from citi.evaluation.generation import generate

    out = []
    for prompts, new, stop in groups:
        out += generate(model, tokenizer, prompts, new, stop, batch, **kw)
    return out


def one_call(model, tokenizer, groups, batch: int) -> list[str]:
    return batched(model, tokenizer, groups, batch, prune_every=None)


def pruned(model, tokenizer, groups, batch: int) -> list[str]:
    return batched(model, tokenizer, groups, batch, prune_every=PRUNE_EVERY)


def prune_at(every: int, model, tokenizer, groups, batch: int) -> list[str]:
    return batched(model, tokenizer, groups, batch, prune_every=every)


def static(model, tokenizer, groups, batch: int) -> list[str]:
    # The same loop, with transformers' static cache for every `generate` call it makes.
    plain = model.generate
    model.generate = functools.partial(plain, cache_implementation="static")
    try:
        return one_call(model, tokenizer, groups, batch)
    finally:
        del model.generate  # the instance attribute; the class's method shows again


def continuous(model, tokenizer, groups, batch: int) -> list[str]:
    from transformers import ContinuousBatchingConfig, GenerationConfig

    from citi.evaluation.generation import truncate_at_stop

    out = []
    for prompts, new, stop in groups:
        ids = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        config = GenerationConfig(
            max_new_tokens=new,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        longest = max(len(x) for x in ids) + new
        cb = ContinuousBatchingConfig(
            page_size=32,
            # room for `batch` requests of the longest length, nothing sized from free memory
            num_blocks=batch * (longest // 32 + 2),
            max_requests_per_batch=batch,
            max_batch_tokens=max(256, batch * 64),
        )
        results = model.generate_batch(
            ids, generation_config=config, continuous_batching_config=cb, warmup=False
        )
        if len(results) != len(ids):
            raise RuntimeError(f"generate_batch returned {len(results)} of {len(ids)} answers")
        for r in results.values():
            text = tokenizer.decode(r.generated_tokens, skip_special_tokens=True)
            out.append(truncate_at_stop(text, stop))
    return out


PRUNE_EVERY = 8
ENGINES = {"batched": one_call, "pruned": pruned, "static": static, "continuous": continuous}


def first_difference(a: str, b: str) -> int:
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


def main(argv=None) -> None:
    import torch

    from citi.adapters import load_for_eval

    args = parse_args(argv)
    global PRUNE_EVERY
    PRUNE_EVERY = args.prune_every
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    for e in engines:
        if e.startswith("pruned") and e[6:].isdigit():  # pruned4: --prune-every 4
            ENGINES[e] = functools.partial(prune_at, int(e[6:]))
        if e not in ENGINES:
            raise SystemExit(
                f"citi: error: --engines: unknown engine {e!r} (of {', '.join(ENGINES)})"
            )
    with open("/proc/loadavg") as fh:
        load_before = " ".join(fh.read().split()[:3])
    loaded = load_for_eval(args.model, None, "auto", "cpu", args.precision)
    model, tokenizer = loaded.model, loaded.tokenizer
    groups = requests(args, tokenizer)
    print(
        f"load {load_before}; torch threads {torch.get_num_threads()}; "
        f"{sum(len(g[0]) for g in groups)} prompts, batch {args.batch}, {args.precision}"
    )
    seconds: dict[str, list[float]] = {e: [] for e in engines}
    outputs: dict[str, list[str]] = {}
    for _ in range(args.repeats):
        for e in engines:
            start = time.perf_counter()
            outputs[e] = ENGINES[e](model, tokenizer, groups, args.batch)
            seconds[e].append(time.perf_counter() - start)
    base = engines[0]
    for e in engines:
        tokens = sum(len(x) for x in tokenizer(outputs[e], add_special_tokens=False)["input_ids"])
        s = statistics.median(seconds[e])
        tps = tokens / s
        line = f"{e:<11} {tokens:5d} tokens {s:7.1f} s {tps:6.1f} tok/s"
        if e != base:
            base_s = statistics.median(seconds[base])
            base_tokens = sum(
                len(x) for x in tokenizer(outputs[base], add_special_tokens=False)["input_ids"]
            )
            diff = [
                i for i, (a, b) in enumerate(zip(outputs[base], outputs[e], strict=True)) if a != b
            ]
            line += (
                f"  /{base}: tok/s {tps / (base_tokens / base_s):.2f}x, time {base_s / s:.2f}x, "
            )
            line += (
                "identical"
                if not diff
                else (
                    f"{len(diff)} differ: "
                    + ", ".join(
                        f"#{i}@{first_difference(outputs[base][i], outputs[e][i])}" for i in diff
                    )
                )
            )
        print(line, f"(runs {[round(x, 1) for x in seconds[e]]})")
    with open("/proc/loadavg") as fh:
        print("load after", " ".join(fh.read().split()[:3]))


if __name__ == "__main__":
    main()
