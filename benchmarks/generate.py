"""Generation speed: batched vs one-at-a-time, and MOLoRA's latency against the base model.

    .venv/bin/python benchmarks/generate.py [--model M] [--batch 8] [--new-tokens 32]

In one run on the same model and prompts (API-Bank-like chat prompts of varied length):
  1. tokens/s of citi's batched greedy generation at batch 8 against generating the same prompts
     one at a time (target >= 3x);
  2. the latency of generating with MOLoRA on 20% of the components (a seeded random choice, B
     randomised so the experts do real work) as a ratio to the base model (target <= 1.15);
  3. tokens/s at batch 8 with bfloat16 weights (what ``citi eval --precision bf16`` loads)
     against float32 weights (target >= 1.8).
No stop strings, so every call generates exactly --new-tokens tokens per prompt.
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import interleaved_median_times  # noqa: E402

from citi.components import list_components  # noqa: E402
from citi.evaluation.generation import generate  # noqa: E402
from citi.models import load_model  # noqa: E402
from citi.molora import MoloraConfig, inject_molora, molora_parameters  # noqa: E402


def prompts(tokenizer, n: int) -> list[str]:
    rng = random.Random(0)
    words = "book a table for two at the italian place near the office tomorrow evening".split()
    out = []
    for _ in range(n):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(20, 120)))
        out.append(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
            )
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dtype", default="auto")
    p.add_argument("--device", default=None)
    args = p.parse_args()

    loaded = load_model(args.model, dtype=args.dtype, device=args.device)
    tok, base = loaded.tokenizer, loaded.model
    bf16 = load_model(args.model, dtype="bfloat16", device=args.device).model
    molora = copy.deepcopy(base)
    names = [c.name for c in list_components(molora)]
    inject_molora(molora, random.Random(0).sample(names, round(0.2 * len(names))), MoloraConfig())
    with torch.no_grad():
        for param in molora_parameters(molora, "experts"):
            param.normal_(0, 0.01)
    molora.eval()
    ps = prompts(tok, args.batch)
    n = args.new_tokens

    fns = {
        "batched": lambda: generate(base, tok, ps, n, batch_size=args.batch),
        "batched bf16": lambda: generate(bf16, tok, ps, n, batch_size=args.batch),
        "one-at-a-time": lambda: generate(base, tok, ps, n, batch_size=1),
        "molora batched": lambda: generate(molora, tok, ps, n, batch_size=args.batch),
        "base single": lambda: generate(base, tok, ps[:1], n, batch_size=1),
        "molora single": lambda: generate(molora, tok, ps[:1], n, batch_size=1),
    }
    t = interleaved_median_times(fns, args.repeats, loaded.device)
    tokens = args.batch * n
    print(
        f"model {args.model}, {args.batch} prompts x {n} new tokens, device {loaded.device}, "
        f"{args.repeats} repeats"
    )
    for name, seconds in t.items():
        count = n if "single" in name else tokens
        print(f"  {name:<15} {seconds:7.3f} s  {count / seconds:8.1f} tok/s")
    print(
        f"batched / one-at-a-time throughput   {t['one-at-a-time'] / t['batched']:.2f}x"
        "  (target >= 3)"
    )
    print(
        f"MOLoRA / base latency, batch {args.batch}      "
        f"{t['molora batched'] / t['batched']:.3f}  (target <= 1.15)"
    )
    print(f"MOLoRA / base latency, one prompt    {t['molora single'] / t['base single']:.3f}")
    print(
        f"bf16 / {base.dtype} weights throughput, batch {args.batch}  "
        f"{t['batched'] / t['batched bf16']:.2f}x  (target >= 1.8)"
    )


if __name__ == "__main__":
    main()
