"""citi: Component Importance-based Tool-utilizing ability Injection (Hao et al., AAAI 2025).

The public API, imported on first use so that ``import citi`` stays light (no torch, no PEFT)::

    from citi import load_model, compute_importance, inject_molora, load_adapter
    from citi import Trainer, TrainConfig, evaluate, EvalConfig

MOLoRA as a PEFT method (``get_peft_model``, ``PeftModel.from_pretrained``, ``load_adapter``):
``import citi.molora.peft`` registers it; ``citi export`` does so itself.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> the module that defines it
_PUBLIC = {
    "load_model": "citi.models.loader",
    "compute_importance": "citi.importance.scores",
    "Trainer": "citi.train.loop",
    "TrainConfig": "citi.train.config",
    "evaluate": "citi.evaluation.runner",
    "EvalConfig": "citi.evaluation.config",
    "inject_molora": "citi.molora.model",
    "load_adapter": "citi.adapters",
}
__all__ = list(_PUBLIC)


def __getattr__(name: str):  # PEP 562: the public names are imported when first used
    if name not in _PUBLIC:
        raise AttributeError(f"module 'citi' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
