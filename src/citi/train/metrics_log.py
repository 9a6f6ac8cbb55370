"""The per-step training log (metrics.jsonl)."""

from __future__ import annotations

import json
import math
import os

import torch

from citi.errors import CitiError


def log_step(acc, path, step, stage, index, epoch, micro, window, grad_norm, lr, seconds) -> dict:
    """One optimizer step's record (losses averaged over its micro-batches and processes,
    tokens summed), appended to metrics.jsonl by the main process."""

    def mean(key):
        vals = [w[key] for w in window if w[key] is not None]
        if not vals:
            return None
        return float(acc.reduce(torch.stack(vals).mean(), reduction="mean"))

    def total(key):
        return int(acc.reduce(torch.tensor(sum(w[key] for w in window), device=acc.device), "sum"))

    tokens = total("tokens")
    record = {
        "stage": stage.name,
        "stage_index": index,
        "epoch": epoch,
        "step": step,
        "micro": micro + 1,
        "loss": mean("loss"),
        "lm_loss": mean("lm_loss"),
        "routing_loss": mean("routing_loss"),
        "null_mass": mean("null_mass"),
        "lr": lr,
        "grad_norm": float(grad_norm) if grad_norm is not None else None,
        "tokens": tokens,
        "sequences": total("sequences"),
        "label_tokens": total("label_tokens"),
        "tokens_per_s": tokens / max(seconds, 1e-9),
    }
    if acc.is_main_process:
        append_line(path, json.dumps(record))
    return record


def append_line(path, line: str) -> None:
    """Append one JSON line whole or not at all: a write the disk refuses halfway is cut back
    off, so the log never ends in half a record."""
    data = line.encode() + b"\n"
    with open(path, "ab", buffering=0) as fh:
        start = fh.seek(0, os.SEEK_END)
        try:
            done = 0
            while done < len(data):
                done += fh.write(data[done:])
        except OSError:
            fh.truncate(start)
            raise


def check_finite(stage, window: list[dict], grad_norm, global_step: int, checkpoint) -> None:
    """Stop on a non-finite loss or gradient norm before it reaches the weights: the last
    checkpoint stays as it was and no final weights are written."""
    losses = torch.stack([w["loss"].float() for w in window])
    bad = not bool(torch.isfinite(losses).all())
    value = "loss " + ", ".join(f"{float(x):g}" for x in losses)
    if not bad and grad_norm is not None and not math.isfinite(float(grad_norm)):
        bad, value = True, f"gradient norm {float(grad_norm):g}"
    if bad:
        kept = checkpoint.is_dir()
        raise CitiError(
            f"stage {stage.name}, step {global_step + 1}: non-finite {value}; "
            "stopped "
            + ("(the last checkpoint is kept; " if kept else "(")
            + "no final weights written). Check --lr, --beta and the data"
        )
