"""Resumable training state: trained tensors, optimizer, scheduler, RNG and position.

A checkpoint is one directory written atomically by the main process; ``progress.json`` says
which stage and micro-batch to continue from. Optimizer state is saved from the main process,
which is right for one process and for DDP (every rank holds the same state); sharded
optimizers (FSDP, DeepSpeed ZeRO) are not resumable this way.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from citi.adapters import diff_state
from citi.io import atomic_path


def save_checkpoint(
    path: Path, model, base_keys: set[str], progress: dict, optimizer=None, scheduler=None
) -> None:
    with atomic_path(path) as tmp:
        tmp.mkdir(parents=True)
        save_file(diff_state(model, base_keys), str(tmp / "trained.safetensors"))
        if optimizer is not None:
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save({"torch": torch.get_rng_state(), "python": random.getstate()}, tmp / "rng.pt")
        (tmp / "progress.json").write_text(json.dumps(progress, indent=2) + "\n")


def read_progress(path: Path) -> dict | None:
    file = path / "progress.json"
    return json.loads(file.read_text()) if file.is_file() else None


def load_checkpoint(path: Path, model) -> dict:
    """Load the trained tensors into ``model`` and restore RNG; returns progress."""
    model.load_state_dict(load_file(str(path / "trained.safetensors")), strict=False)
    rng = torch.load(path / "rng.pt", weights_only=False)
    torch.set_rng_state(rng["torch"])
    random.setstate(rng["python"])
    return read_progress(path)


def load_optimizer(path: Path, optimizer, scheduler) -> bool:
    """Restore optimizer and scheduler state if the checkpoint has them (mid-stage)."""
    if not (path / "optimizer.pt").is_file():
        return False
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    return True
