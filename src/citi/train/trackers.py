"""Experiment trackers (``--report-to``) through accelerate's tracker API.

The Accelerator is made with ``log_with`` and a logging directory; the run calls
``init_trackers`` with the resolved config as hyper-parameters, ``log`` once per optimizer step
and after each stage's evaluation, and ``end_training`` when it stops. metrics.jsonl is written
either way; a tracker is a second view of the same numbers.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from citi.errors import ConfigError

REPORT_TO = ("none", "tensorboard", "wandb", "mlflow", "trackio")
PROJECT = "citi"  # the W&B / MLflow / trackio project; TensorBoard's folder under OUT/logs/

# The keyword each tracker's init takes for the run's name (OUT's folder name).
_RUN_NAME_KEY = {"wandb": "name", "mlflow": "run_name", "trackio": "name"}

# metrics.jsonl key -> the scalar's tag.
STEP_SCALARS = {
    "loss": "train/loss",
    "lm_loss": "train/lm_loss",
    "routing_loss": "train/routing_loss",
    "null_mass": "train/router_null_mass",
    "lr": "train/lr",
    "grad_norm": "train/grad_norm",
    "tokens_per_s": "train/tokens_per_s",
}


def check_tracker(report_to: str) -> None:
    """Refuse a tracker whose package is missing (accelerate would drop it without a word)."""
    from accelerate.utils import (
        is_mlflow_available,
        is_tensorboard_available,
        is_trackio_available,
        is_wandb_available,
    )

    available = {
        "none": lambda: True,
        "tensorboard": is_tensorboard_available,
        "wandb": is_wandb_available,
        "mlflow": is_mlflow_available,
        "trackio": is_trackio_available,
    }
    if report_to not in available:
        raise ConfigError(f"--report-to: choose one of {', '.join(REPORT_TO)}, got {report_to!r}")
    if not available[report_to]():
        extra = " (or pip install 'citi[tensorboard]')" if report_to == "tensorboard" else ""
        raise ConfigError(
            f"--report-to {report_to}: the {report_to} package is not installed; "
            f"pip install {report_to}{extra}"
        )


def accelerator_options(report_to: str, out: Path) -> dict[str, Any]:
    """Keyword arguments for ``Accelerator``: the tracker and where local ones write."""
    if report_to == "none":
        return {}
    from accelerate.utils import ProjectConfiguration

    config = ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs"))
    return {"log_with": report_to, "project_config": config}


def init_kwargs(report_to: str, out: Path) -> dict[str, dict]:
    """``init_trackers``'s per-tracker keywords: the run is named after OUT's folder."""
    key = _RUN_NAME_KEY.get(report_to)
    return {report_to: {key: out.resolve().name}} if key else {}


def hyperparameters(config) -> dict[str, int | float | str | bool]:
    """The resolved config as flat scalars (TensorBoard's hparams take nothing else): a section
    becomes ``molora.rank``, a list its JSON text, None the text "none"."""
    flat: dict[str, int | float | str | bool] = {}

    def add(key: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                add(f"{key}.{k}", v)
        elif isinstance(value, bool | int | float | str):
            flat[key] = value
        elif value is None:
            flat[key] = "none"
        else:
            flat[key] = json.dumps(value)

    for key, value in dataclasses.asdict(config).items():
        add(key, value)
    return flat


def step_scalars(record: dict) -> dict[str, float]:
    """One optimizer step's metrics.jsonl record as tracker scalars (absent values left out:
    no LM loss in forward-only RP, no routing loss or null mass without a null-expert router)."""
    return {tag: record[key] for key, tag in STEP_SCALARS.items() if record.get(key) is not None}
