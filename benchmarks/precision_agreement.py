"""Does bf16 change the answers? Importance rankings and greedy generations, bf16 vs float32.

    .venv/bin/python benchmarks/precision_agreement.py [--samples 32] [--prompts 16]

On the same examples in one run: the importance of every component per ability from a float32
pass and from a bf16-autocast pass (float64 sums either way), compared by Spearman rank
correlation per ability (target >= 0.98) and by the overlap of the MOLoRA and UCO selections
(target >= 90%); and greedy generations of float32 vs bfloat16 weights on API-Bank level-2
prompts: the share that are identical (reported, no target). Needs the data directory.
"""

from __future__ import annotations

import argparse

from citi.components import list_components
from citi.data import PaddingCollator, encode_all, load_dataset
from citi.data.render import render_prompt
from citi.evaluation.generation import generate
from citi.importance.run import DEFAULT_ABILITIES
from citi.importance.scores import combine_general, importance_sums, normalize
from citi.models import load_model
from citi.precision import autocast
from citi.selection import select_components


def spearman(a: dict[str, float], b: dict[str, float]) -> float:
    names = list(a)

    def rank(d):
        order = sorted(names, key=lambda n: d[n])
        return {n: i for i, n in enumerate(order)}

    ra, rb = rank(a), rank(b)
    n = len(names)
    d2 = sum((ra[x] - rb[x]) ** 2 for x in names)
    return 1 - 6 * d2 / (n * (n * n - 1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--samples", type=int, default=32)
    p.add_argument("--prompts", type=int, default=16)
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()

    loaded = load_model(args.model, dtype="float32", device="cpu")
    tok, model = loaded.tokenizer, loaded.model
    comps = [c.name for c in list_components(model)]
    collate = PaddingCollator(tok.pad_token_id)
    scores = {"fp32": {}, "bf16": {}}
    for ability, dataset in DEFAULT_ABILITIES.items():
        ex = load_dataset(dataset, args.data_dir, limit=args.samples, seed=0)
        enc = sorted(encode_all(tok, ex, 512), key=lambda e: len(e.input_ids))
        for precision in scores:
            batches = [collate(enc[i : i + 4]) for i in range(0, len(enc), 4)]
            with autocast(precision, "cpu"):
                hooks = importance_sums(model, batches, comps)
            scores[precision][ability] = normalize(hooks.scores("taylor"))
        rho = spearman(scores["fp32"][ability], scores["bf16"][ability])
        print(f"importance {ability:<12} Spearman bf16 vs fp32 {rho:.4f}  (target >= 0.98)")
    sel = {}
    for precision, per in scores.items():
        m, c = per["tool"], combine_general(per, tool="tool")
        sel[precision] = select_components(m, c, 0.2, 0.1, "top", 0)
    for part in ("molora", "uco"):
        a, b = set(getattr(sel["fp32"], part)), set(getattr(sel["bf16"], part))
        print(
            f"selection {part:<6} overlap {len(a & b)}/{len(a)} = {len(a & b) / len(a):.1%}"
            "  (target >= 90%)"
        )
    examples = load_dataset("apibank-l2", args.data_dir, limit=args.prompts)
    prompts = [render_prompt(tok, e.prompt_messages) for e in examples]
    out32 = generate(model, tok, prompts, 64, ("\n\n", "<|im_end|>"), 8)
    model16 = load_model(args.model, dtype="bfloat16", device="cpu").model
    out16 = generate(model16, tok, prompts, 64, ("\n\n", "<|im_end|>"), 8)
    same = sum(a == b for a, b in zip(out32, out16, strict=True))
    print(f"greedy generations identical bf16 vs fp32: {same}/{len(prompts)}")


if __name__ == "__main__":
    main()
