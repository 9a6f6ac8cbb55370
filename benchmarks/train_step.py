"""Training-step cost of MOLoRA (stage MI) against PEFT LoRA, full fine-tuning and a frozen pass.

    .venv/bin/python benchmarks/train_step.py [--model M] [--batch 4] [--seq 256]

Same model, same batch (random tokens, the last quarter labelled), same label-token loss, in one
run. A step = forward + backward + AdamW step on the trainable parameters:
  mi      MOLoRA (4 experts, r8) on the top 20% of components by a seeded random stand-in for
          tool importance (which components does not change the cost much), routers and experts
          trainable, routing loss on
  rp      stage RP as the trainer runs it: routers only, B = 0, the decoder under no_grad and
          only the routers' softmax in the graph (citi.molora.RouterPretrainingLoss)
  lora    PEFT LoRA r16 alpha 16 on every linear component
  ft      every weight trainable
  frozen  forward + backward with every weight frozen and the embedding output requiring grad
  forward the bare decoder forward of the base model under no_grad (no LM head): the floor of any
          exact RP step, which needs every MOLoRA component's input and hence this forward up
          to the highest MOLoRA layer
Each of mi, rp, lora and forward also runs as ``-bf16``, what ``--precision bf16`` does: bf16
autocast, float32 trained weights, frozen linear weights stored in bf16
(citi.precision.store_frozen_in_bf16) and, on a CPU, eager attention for MI and LoRA, SDPA for RP
and forward. ``mi-bf16-sdpa`` keeps SDPA attention; ``mi-bf16-f32store`` keeps every weight in
float32 (``--dtype float32``), cast by autocast at each use. Time: median of interleaved
repetitions in this process. Memory: each variant in a fresh subprocess (see _harness.py). Targets:
MI throughput >= 1.2x LoRA's in both precisions, MI peak memory <= LoRA's, MI bf16 / fp32
throughput >= 2.0, RP / MI step time <= 0.40.
"""

from __future__ import annotations

import contextlib
import json
import random
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

from citi.adapters import inject_lora  # noqa: E402
from citi.components import list_components  # noqa: E402
from citi.importance.scores import frozen_with_input_grads  # noqa: E402
from citi.loss import mean_token_loss  # noqa: E402
from citi.models import load_model  # noqa: E402
from citi.molora import (  # noqa: E402
    MoloraConfig,
    RouterPretrainingLoss,
    inject_molora,
    molora_parameters,
    routing_context,
    routing_loss,
)
from citi.precision import autocast, store_frozen_in_bf16, training_attention  # noqa: E402

KEEP = contextlib.ExitStack()  # the variants' attention settings, held for the whole run
VARIANTS = (
    "mi",
    "rp",
    "lora",
    "ft",
    "frozen",
    "forward",
    "mi-bf16",
    "mi-bf16-sdpa",
    "mi-bf16-f32store",
    "rp-bf16",
    "lora-bf16",
    "forward-bf16",
)


def build(variant: str, args):
    sdpa = variant.endswith("-sdpa")
    variant = variant.removesuffix("-sdpa")
    store32 = variant.endswith("-f32store")
    variant = variant.removesuffix("-f32store")
    precision = "bf16" if variant.endswith("-bf16") else "fp32"
    variant = variant.removesuffix("-bf16")
    loaded = load_model(args.model, dtype=args.dtype, device=args.device)
    model = loaded.model
    if not sdpa:  # what the trainer does: eager attention under bf16 on a CPU (SDPA for RP)
        backward = variant not in ("rp", "forward")
        KEEP.enter_context(training_attention(model, precision, loaded.device, backward))
    comps = list_components(model)
    for p in model.parameters():
        p.requires_grad_(False)
    if variant in ("mi", "rp"):
        top = random.Random(0).sample([c.name for c in comps], round(0.2 * len(comps)))
        inject_molora(model, top, MoloraConfig())
        params = molora_parameters(model, "all" if variant == "mi" else "router")
    elif variant == "lora":
        inject_lora(model, [c.path for c in comps], 16, 16)
        params = [p for n, p in model.named_parameters() if "lora_" in n]
    elif variant == "ft":
        params = list(model.parameters())
    else:
        params = []
    for p in params:
        p.requires_grad_(True)
    if precision == "bf16" and not store32:  # what the trainer does under --dtype auto
        trained = {n for n, p in model.named_parameters() if p.requires_grad}
        store_frozen_in_bf16(model, trained.__contains__)
    model.train()
    batch = make_batch(len(loaded.tokenizer), args.batch, args.seq)
    batch = {k: v.to(loaded.device) for k, v in batch.items()}
    optimizer = torch.optim.AdamW(params, lr=1e-5) if params else None

    rp_loss = RouterPretrainingLoss(model)

    def step():
        if variant == "forward":
            with torch.no_grad(), autocast(precision, loaded.device):
                model.get_decoder()(**{k: batch[k] for k in ("input_ids", "attention_mask")})
            return
        if variant == "frozen":
            with frozen_with_input_grads(model):
                mean_token_loss(model, batch).backward()
            return
        with autocast(precision, loaded.device):
            if variant == "mi":
                with routing_context(model, batch["attention_mask"]):
                    loss = mean_token_loss(model, batch)
                    loss = loss + 0.01 * routing_loss(model, batch["task_type"])
            elif variant == "rp":
                ids, mask = batch["input_ids"], batch["attention_mask"]
                loss = 0.01 * rp_loss(ids, mask, batch["task_type"])
            else:
                loss = mean_token_loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return loaded, step


def worker(args) -> None:
    loaded, step = build(args.worker, args)
    precision = "bf16" if "-bf16" in args.worker else "fp32"
    with torch.no_grad(), autocast(precision, loaded.device):  # bf16: frozen weights are bf16
        loaded.model(input_ids=torch.tensor([[11, 12, 13]], device=loaded.device))
    added, peak = peak_memory(step, str(loaded.device))
    print(json.dumps({"added": added, "peak": peak}))


def main() -> None:
    p = benchmark_parser(__doc__, 3, VARIANTS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    memory = memory_per_variant(__file__, VARIANTS, args)
    steps = {v: build(v, args) for v in VARIANTS}
    device = next(iter(steps.values()))[0].device
    seconds = interleaved_median_times(
        {v: fn for v, (_, fn) in steps.items()}, args.repeats, device
    )
    tokens = args.batch * args.seq
    tps = {v: tokens / t for v, t in seconds.items()}
    mib = 2**20
    print(
        f"model {args.model}, batch {args.batch}x{args.seq}, device {device}, "
        f"{args.repeats} repeats"
    )
    for v in VARIANTS:
        print(
            f"  {v:<12} {tps[v]:8.1f} tok/s   added memory {memory[v]['added'] / mib:8.1f} MiB"
            f"   peak {memory[v]['peak'] / mib:8.1f} MiB"
        )
    print(f"MI / LoRA throughput, fp32  {tps['mi'] / tps['lora']:.3f}  (target >= 1.2)")
    print(f"MI / LoRA throughput, bf16  {tps['mi-bf16'] / tps['lora-bf16']:.3f}  (target >= 1.2)")
    print(f"MI bf16 / fp32 throughput   {tps['mi-bf16'] / tps['mi']:.3f}  (target >= 2.0)")
    print(
        f"MI bf16 eager / SDPA attention {tps['mi-bf16'] / tps['mi-bf16-sdpa']:.3f}"
        "  (CPU only: the trainer's choice against the default)"
    )
    print(
        "MI bf16, frozen weights in bf16 / float32 "
        f"{tps['mi-bf16'] / tps['mi-bf16-f32store']:.3f}  (--dtype auto against float32)"
    )
    print(f"RP / MI step time, fp32     {seconds['rp'] / seconds['mi']:.3f}  (target <= 0.40)")
    print(
        f"RP / MI step time, bf16     {seconds['rp-bf16'] / seconds['mi-bf16']:.3f}"
        "  (target <= 0.40)"
    )
    for tag, suffix in (("fp32", ""), ("bf16", "-bf16")):
        fwd = seconds["forward" + suffix]
        print(
            f"bare forward / MI, {tag}     {fwd / seconds['mi' + suffix]:.3f}  (the floor of an "
            f"exact RP / MI; RP / bare forward {seconds['rp' + suffix] / fwd:.3f})"
        )
    print(
        f"MI / LoRA peak memory       {memory['mi']['peak'] / memory['lora']['peak']:.3f}"
        f"  (target <= 1.0; whole process)"
    )
    print(f"MI / LoRA added memory      {memory['mi']['added'] / memory['lora']['added']:.3f}")
    print(f"MI / FT throughput          {tps['mi'] / tps['ft']:.3f}")
    print(f"MI / frozen-pass throughput {tps['mi'] / tps['frozen']:.3f}")


if __name__ == "__main__":
    with KEEP:  # restore the kernels before the interpreter tears transformers down
        main()
