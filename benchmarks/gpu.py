"""Training throughput, MFU and peak memory per stage, for a lent GPU machine.

    .venv/bin/python benchmarks/gpu.py [--models smollm2-135m-instruct,llama-3-8b-instruct:8]

For each model (an alias citi loads, or a config citi.plan knows, ``NAME:LAYERS`` keeping only
that many decoder layers, randomly initialised: a Llama-shaped model that fits one GPU) and each
stage of CITI plus the baselines (RP routers only, MI MOLoRA on 20% of the components, UCO full
training of 10%, LoRA r16 on every linear, FT), one step = forward + backward + AdamW under bf16
autocast with float32 master weights, the trainer's setting. Prints tokens/s, MFU and peak
memory. MFU counts 2N FLOPs per token for the forward, 2N for the backward to the inputs, and
2N_trainable for the weight gradients (6N for FT), over the device's dense bf16 peak. It runs
on a CPU too (no MFU there), which is how it is checked without a GPU; the numbers that matter
come from ``run`` on a lent machine and go into the README with the command.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import make_batch, peak_memory  # noqa: E402

from citi.adapters import inject_lora  # noqa: E402
from citi.components import list_components  # noqa: E402
from citi.loss import mean_token_loss  # noqa: E402
from citi.molora import (  # noqa: E402
    MoloraConfig,
    RouterPretrainingLoss,
    inject_molora,
    molora_parameters,
    routing_context,
    routing_loss,
)
from citi.precision import autocast  # noqa: E402

STAGES = ("rp", "mi", "uco", "lora", "ft")
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


def load(spec: str, device: str):
    from citi.models import load_model

    name, _, layers = spec.partition(":")
    if not layers:
        loaded = load_model(name, dtype="float32", device=device)
        return loaded.model, len(loaded.tokenizer)
    from transformers import AutoModelForCausalLM

    from citi.plan import model_config

    config = model_config(name)
    config.num_hidden_layers = int(layers)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).to(device)
    return model, config.vocab_size


def build(spec: str, stage: str, device: str, batch: int, seq: int):
    model, vocab = load(spec, device)
    for p in model.parameters():
        p.requires_grad_(False)
    comps = list_components(model)
    names = [c.name for c in comps]
    rng = random.Random(0)
    if stage in ("rp", "mi"):
        inject_molora(model, rng.sample(names, round(0.2 * len(names))), MoloraConfig())
        params = molora_parameters(model, "router" if stage == "rp" else "all")
    elif stage == "uco":
        chosen = set(rng.sample(names, round(0.1 * len(names))))
        params = [
            p for c in comps if c.name in chosen for p in model.get_submodule(c.path).parameters()
        ]
    elif stage == "lora":
        inject_lora(model, [c.path for c in comps], 16, 16)
        params = [p for n, p in model.named_parameters() if "lora_" in n]
    else:
        params = list(model.parameters())
    for p in params:
        p.requires_grad_(True)
    model.train()
    data = {k: v.to(device) for k, v in make_batch(vocab, batch, seq).items()}
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    rp = RouterPretrainingLoss(model)
    n_all = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in params)

    def step():
        with autocast("bf16", device):
            if stage == "rp":
                loss = 0.01 * rp(data["input_ids"], data["attention_mask"], data["task_type"])
            else:
                with routing_context(model, data["attention_mask"]):
                    loss = mean_token_loss(model, data)
                    if stage == "mi":
                        loss = loss + 0.01 * routing_loss(model, data["task_type"])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    flops_per_token = 2 * n_all if stage == "rp" else 4 * n_all + 2 * n_train
    return step, flops_per_token, n_train


def peak_tflops(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", default="smollm2-135m-instruct,llama-3-8b-instruct:8")
    p.add_argument("--stages", default=",".join(STAGES))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    peak = peak_tflops(args.device)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"device {name}, batch {args.batch}x{args.seq}, bf16 autocast, {args.repeats} repeats")
    for spec in args.models.split(","):
        for stage in args.stages.split(","):
            step, flops_per_token, n_train = build(spec, stage, args.device, args.batch, args.seq)
            step()  # warm-up
            times = []
            for _ in range(args.repeats):
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                step()
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
            seconds = sorted(times)[len(times) // 2]
            tps = args.batch * args.seq / seconds
            _, peak_bytes = peak_memory(step, args.device)
            mfu = f"{100 * tps * flops_per_token / (peak * 1e12):5.1f}%" if peak else "  n/a"
            print(
                f"  {spec:<28} {stage:<5} trainable {n_train:>13,}  {tps:10.1f} tok/s  "
                f"MFU {mfu}  peak {peak_bytes / 2**30:7.2f} GiB"
            )
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
