"""Resumable training state: trained tensors, optimizer, scheduler, RNG and position.

A checkpoint is one directory written atomically by the main process; ``progress.json`` says
which stage and micro-batch to continue from. Optimizer state is saved from the main process,
which is right for one process and for DDP (every rank holds the same state). A sharded run
(``--sharding fsdp``) writes its checkpoints with torch.distributed.checkpoint instead (see
citi.train.sharding); DeepSpeed ZeRO runs are not resumable.

Loading a checkpoint runs no code from it: tensors come from safetensors, the RNG state from
safetensors + JSON, and the optimizer and scheduler state through ``torch.load`` with
``weights_only=True`` (tensors, numbers, strings, lists, tuples and dicts only), so a crafted
pickle payload in a shared run directory is refused with one error line.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from citi.adapters import diff_state
from citi.errors import CitiError
from citi.io import atomic_path


def save_checkpoint(
    path: Path, model, base_keys: set[str], progress: dict, optimizer=None, scheduler=None
) -> None:
    with atomic_path(path) as tmp:
        tmp.mkdir(parents=True)
        save_file(diff_state(model, base_keys), str(tmp / "trained.safetensors"))
        if optimizer is not None:
            # Through Python file objects: a full disk then surfaces as the OSError behind
            # torch's RuntimeError (citi.io.os_error_behind), not as an opaque writer failure.
            with open(tmp / "optimizer.pt", "wb") as fh:
                torch.save(optimizer.state_dict(), fh)
            with open(tmp / "scheduler.pt", "wb") as fh:
                torch.save(scheduler.state_dict(), fh)
        save_file({"torch": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
        version, state, gauss = random.getstate()
        (tmp / "rng.json").write_text(
            json.dumps({"version": version, "state": list(state), "gauss": gauss})
        )
        (tmp / "progress.json").write_text(json.dumps(progress, indent=2) + "\n")


def read_progress(path: Path) -> dict | None:
    file = path / "progress.json"
    if not file.is_file():
        return None
    try:
        progress = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CitiError(f"{file}: not a progress file ({err})") from None
    ok = isinstance(progress, dict) and all(
        isinstance(progress.get(k), int) and not isinstance(progress.get(k), bool)
        for k in ("stage", "micro", "global_step")
    )
    if not ok:
        raise CitiError(f"{file}: needs integer stage, micro and global_step")
    return progress


def _safe_load(file: Path):
    """``torch.load`` that refuses anything but plain data (no pickled code runs)."""
    try:
        return torch.load(file, weights_only=True, map_location="cpu")
    except Exception as err:  # UnpicklingError, EOFError, RuntimeError of a corrupt zip
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CitiError(f"{file}: refused: not a plain tensor/data file ({first[:160]})") from None


def _load_tensors(file: Path) -> dict:
    try:
        return load_file(str(file))
    except Exception as err:  # SafetensorError, OSError
        raise CitiError(f"{file}: unreadable safetensors file ({str(err)[:160]})") from None


def load_checkpoint(path: Path, model) -> dict:
    """Load the trained tensors into ``model`` and restore RNG; returns progress."""
    progress = read_progress(path)
    if progress is None:
        raise CitiError(f"{path}: not a checkpoint (no progress.json)")
    model.load_state_dict(_load_tensors(path / "trained.safetensors"), strict=False)
    rng = _load_tensors(path / "rng.safetensors")
    try:
        py = json.loads((path / "rng.json").read_text())
        state = (int(py["version"]), tuple(int(x) for x in py["state"]), py["gauss"])
        random.setstate(state)
        torch.set_rng_state(rng["torch"])
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
        raise CitiError(f"{path}: unreadable RNG state ({err})") from None
    return progress


def load_optimizer(path: Path, optimizer, scheduler) -> bool:
    """Restore optimizer and scheduler state if the checkpoint has them (mid-stage)."""
    if not (path / "optimizer.pt").is_file():
        return False
    try:
        optimizer.load_state_dict(_safe_load(path / "optimizer.pt"))
        scheduler.load_state_dict(_safe_load(path / "scheduler.pt"))
    except (ValueError, KeyError, TypeError, RuntimeError) as err:
        raise CitiError(
            f"{path}: optimizer/scheduler state does not fit this run ({err})"
        ) from None
    return True
