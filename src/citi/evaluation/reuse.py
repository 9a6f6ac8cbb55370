"""When a rerun of ``citi eval`` into the same ``--out`` may reuse a finished task.

A task's result (``OUT/tasks/<task>.json``) records the settings it was computed under; a rerun
reuses it only when every one of them is the same, and otherwise computes the task again, saying
which settings changed. The data directory and the weights' dtype are among them: a rerun with
another ``--data-dir`` or ``--dtype`` once reused the old results and recorded a dtype that never
ran.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from citi.console import console
from citi.data.datadir import resolve_data_dir
from citi.io import read_json


def settings_key(task, model: str, run_id: str | None, limit: int | None, max_length: int) -> str:
    """The key a finished task is stored under: a hash of the task (name, generation settings,
    version) and of every setting of the run (``run_id`` carries adapter, variant, judge,
    precision, dtype and data)."""
    parts = [task.name, task.max_new_tokens, list(task.stop), model, run_id, limit, max_length]
    if task.version != 1:
        parts.append(f"v{task.version}")
    return hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:16]


def model_dtype(model: torch.nn.Module) -> str:
    """The dtype the weights of ``model`` are stored in, e.g. ``float16``, or ``bfloat16+float32``
    when they are mixed (trained tensors kept in float32 beside bf16 frozen ones)."""
    kinds = sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters()})
    return "+".join(kinds)


def data_location(data_dir) -> str:
    """The data directory a task reads, as an absolute path (``--data-dir``, else
    ``$CITI_DATA_DIR``, else the default): where the examples came from is part of a result."""
    return str(Path(resolve_data_dir(data_dir)).expanduser().resolve())


def reusable(done: Path, key: str, settings: dict, task: str) -> dict | None:
    """The finished result in ``done`` when it was computed under ``key``; else None, after one
    line naming the settings that changed (a result from before they were recorded says so)."""
    if not done.is_file():
        return None
    old = read_json(done)
    if isinstance(old, dict) and old.get("key") == key:
        return old
    before = old.get("settings") if isinstance(old, dict) else None
    if isinstance(before, dict):
        changed = [k for k in settings if before.get(k) != settings[k]]
        shown = "; ".join(f"{k}: {before.get(k)!r} -> {settings[k]!r}" for k in changed[:4])
    else:
        shown = ""
    why = f"other settings ({shown})" if shown else "other settings or an older citi"
    console.print(f"[yellow]{task}: {done} was computed with {why}; computing it again[/yellow]")
    return None
