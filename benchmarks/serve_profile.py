"""Where a tool request's time goes in ``citi serve``: prefill against decode, one row against a
batch, with and without the prefix cache.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/serve_profile.py \\
        [--model smollm2-135m-instruct] [--batch 16] [--repeat 3]

Renders serve_load's tool requests as ``citi serve`` does, then times (best of --repeat, in
seconds) one forward pass of: the whole prompts' prefill (1 row, then --batch rows, left-padded),
the rows' own tokens only after the shared prefix's KV (what the prefix cache leaves to do), and
one decode step (1 row, then --batch rows, over the prompt's KV).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import TOOLS, questions  # noqa: E402


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(min(times), 3)


def main() -> None:
    from citi.data.chat_template import render_generation_prompt
    from citi.serve.model import load_served
    from citi.serve.prefix_cache import CACHE_ARG, PrefixCache, shared_prefix

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    served = load_served(args.model, device="cpu")
    model, tokenizer = served.model, served.tokenizer
    rows = [
        tokenizer(
            render_generation_prompt(
                tokenizer, [{"role": "user", "content": q}], TOOLS, served.template
            ),
            add_special_tokens=False,
        )["input_ids"]
        for q in questions(args.batch)
    ]
    shared = shared_prefix(rows)
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id
    padded = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    prefixes = PrefixCache(model)
    kv = prefixes.kv(rows[0][:shared])
    rest = max(len(r) - shared for r in rows)
    own = torch.tensor([r[shared:] + [pad] * (rest - len(r) + shared) for r in rows])

    def forward(ids, attention=None, cache=None):
        with torch.inference_mode():
            kwargs = {CACHE_ARG: cache} if cache is not None else {}
            model(
                input_ids=ids, attention_mask=attention, use_cache=True, logits_to_keep=1, **kwargs
            )

    b = args.batch
    profile = {
        "prompt_tokens": width,
        "shared_prefix_tokens": shared,
        "prefill_1_row_s": _best(lambda: forward(padded[:1, width - len(rows[0]) :]), args.repeat),
        f"prefill_{b}_rows_s": _best(lambda: forward(padded, mask), args.repeat),
        f"prefill_{b}_rows_after_cached_prefix_s": _best(
            lambda: forward(own, cache=prefixes.batch(kv, b)), args.repeat
        ),
        "decode_step_1_row_s": _best(
            lambda: forward(own[:1, :1], cache=prefixes.batch(kv, 1)), args.repeat
        ),
        f"decode_step_{b}_rows_s": _best(
            lambda: forward(own[:, :1], cache=prefixes.batch(kv, b)), args.repeat
        ),
    }
    print(json.dumps(profile, indent=1))


if __name__ == "__main__":
    main()
