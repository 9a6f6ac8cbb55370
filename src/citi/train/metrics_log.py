"""The per-step training log (metrics.jsonl)."""

from __future__ import annotations

import json

import torch


def log_step(acc, path, step, stage, index, epoch, micro, window, grad_norm, lr, seconds) -> dict:
    """One optimizer step's record (losses averaged over its micro-batches and processes,
    tokens summed), appended to metrics.jsonl by the main process."""

    def mean(key):
        vals = [w[key] for w in window if w[key] is not None]
        if not vals:
            return None
        return float(acc.reduce(torch.stack(vals).mean(), reduction="mean"))

    tokens = int(
        acc.reduce(
            torch.tensor(sum(w["tokens"] for w in window), device=acc.device), reduction="sum"
        )
    )
    record = {
        "stage": stage.name,
        "stage_index": index,
        "epoch": epoch,
        "step": step,
        "micro": micro + 1,
        "loss": mean("loss"),
        "lm_loss": mean("lm_loss"),
        "routing_loss": mean("routing_loss"),
        "lr": lr,
        "grad_norm": float(grad_norm) if grad_norm is not None else None,
        "tokens": tokens,
        "tokens_per_s": tokens / max(seconds, 1e-9),
    }
    if acc.is_main_process:
        with open(path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
    return record
