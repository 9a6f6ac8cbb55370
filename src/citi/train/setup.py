"""Setting a run up: its selection, the model with the method's adapters, and the check that a
resumed run still has the settings it was started with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from citi.adapters import adapter_kind, inject_lora
from citi.components import list_components
from citi.config import changed_settings
from citi.errors import CitiError
from citi.models import load_model
from citi.molora.model import inject_molora
from citi.precision import store_frozen_in_bf16
from citi.selection import read_selection
from citi.train.params import group_parameter_names

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass
class RunState:
    """What a run has done so far: saved in every checkpoint, restored on resume."""

    global_step: int = 0
    eval_log: list = field(default_factory=list)  # [{"after": stage, "loss": {...}}]
    stage_seconds: dict = field(default_factory=dict)
    trainable: dict = field(default_factory=dict)  # stage -> trainable parameter count
    # What the optimizer steps saw, over all processes (the report's budget table): training
    # sequences, their tokens (prompt and answer, padding excluded) and their label tokens.
    seen: dict = field(default_factory=lambda: {"sequences": 0, "tokens": 0, "label_tokens": 0})
    # stage -> {"slots": token slots of its micro-batches, "padded": those holding padding}
    padding: dict = field(default_factory=dict)

    def progress(self, position: dict) -> dict:
        """What a checkpoint at ``position`` (stage, micro-batch) records."""
        return {
            **position,
            "global_step": self.global_step,
            "eval": self.eval_log,
            "stage_seconds": self.stage_seconds,
            "trainable": self.trainable,
            "seen": self.seen,
            "padding": self.padding,
        }

    def count(self, record: dict) -> None:
        """Add one optimizer step's metrics.jsonl record to what the run has seen."""
        for key in self.seen:
            self.seen[key] += record[key]


@dataclass
class RunSetup:
    """Everything a run builds before its first step (see :meth:`Trainer.setup`)."""

    selection: dict
    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase
    meta: dict  # adapter_config.json content
    base_keys: set  # base tensors any stage trains (saved with the adapter)
    encoded: list  # training examples, encoded
    data_summary: dict
    eval_data: dict
    snapshot_steps: dict  # optimizer step -> fraction of training


# Settings that may change between an interrupted run and its resumption without changing it.
RESUMABLE_CHANGES = frozenset({"device", "data_dir", "max_steps", "report_to"})


def check_same_config(saved_file: Path, config) -> None:
    """Refuse to resume a run under other settings, naming every field that differs."""
    shown = changed_settings(saved_file, config, RESUMABLE_CHANGES)
    if shown:
        raise CitiError(
            f"--resume: {saved_file.parent} was started with other settings ({shown}); "
            f"use --resume --force to continue it anyway, or another --out"
        )


def load_selection(config) -> dict:
    """selection.json of the run (empty sets for methods that need none), checked by shape."""
    if not config.selection:
        return {"molora": [], "uco": []}
    return read_selection(config.selection)


def is_trained(name: str, base_keys: set) -> bool:
    """Whether a stage of the run trains the tensor ``name``: an adapter's or a trained base's."""
    return bool(adapter_kind(name)) or name in base_keys


def build_model(config, selection: dict, device: str, precision: str = "fp32"):
    """The base model with the method's adapters injected, the adapter_config.json content,
    and the names of the base tensors any stage trains (saved with the adapter).

    In bf16 with ``--dtype auto``, the linear weights no stage trains are stored in bf16 (see
    :func:`citi.precision.store_frozen_in_bf16`; exact under autocast); not when sharded, where
    FSDP2 would meet mixed dtypes in one layer."""
    cfg, method = config, config.method_spec
    loaded = load_model(
        cfg.model, dtype=cfg.dtype if cfg.dtype != "auto" else "float32", device=device
    )
    model = loaded.model
    meta = {
        "base_model": cfg.model,
        "method": cfg.method,
        "molora": None,
        "lora": None,
        "molora_components": [],
        "uco_components": selection.get("uco", []),
    }
    if method.adapter == "molora":
        molora = cfg.molora_config()
        inject_molora(model, selection["molora"], molora)
        meta["molora"] = vars(molora).copy()
        meta["molora_components"] = selection["molora"]
    elif method.adapter == "lora":
        comps = list_components(model)
        chosen = (
            comps
            if method.lora_targets == "all"
            else [c for c in comps if c.name in set(selection["molora"])]
        )
        targets = [c.path for c in chosen]
        rank, alpha = cfg.lora_settings()
        inject_lora(model, targets, rank, alpha)
        meta["lora"] = {"targets": targets, "rank": rank, "alpha": alpha}
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    # Base (non-adapter) tensors any stage trains: saved in checkpoints and the final adapter.
    base_keys: set[str] = set()
    for stage in cfg.stages():
        if stage.group in ("uco", "selected", "all"):
            base_keys |= set(group_parameter_names(model, stage.group, selection))
    meta["trained_base_tensors"] = len(base_keys)
    if precision == "bf16" and cfg.dtype == "auto" and cfg.sharding == "none":
        store_frozen_in_bf16(model, lambda name: is_trained(name, base_keys))
    return loaded, model, meta, base_keys


def run_summary(config, state: RunState, built: RunSetup, precision: str, model, layout) -> dict:
    """summary.json of a finished run: what it trained on, for how long, and how it ended."""
    summary = {
        "method": config.method,
        "model": config.model,
        "data": built.data_summary,
        "trainable_parameters": state.trainable,
        "stage_seconds": state.stage_seconds,
        # Share of each stage's micro-batch token slots that were padding (compute spent on
        # nothing); --group-by-length lowers it.
        "padded_share": {
            stage: round(p["padded"] / p["slots"], 4) if p["slots"] else 0.0
            for stage, p in state.padding.items()
        },
        "global_steps": state.global_step,
        # sequences, tokens and label tokens the optimizer steps saw (repeats counted: epochs)
        "seen": state.seen,
        "precision": precision,
        "bf16_frozen_parameters": sum(
            p.numel()
            for n, p in model.named_parameters()
            if p.dtype == torch.bfloat16 and not is_trained(n, built.base_keys)
        ),
        "snapshots": {
            f"step-{step:05d}": fraction for step, fraction in built.snapshot_steps.items()
        },
        "eval": state.eval_log,
    }
    if layout:
        summary["sharding"] = layout
    return summary
