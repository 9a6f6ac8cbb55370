"""MOLoRA: Mixture-of-LoRA experts with a null-expert router (config, layer, model).

The names below are imported on first use (PEP 562), so that ``citi.components`` can read the
adapter-name rule from ``citi.molora.layer`` without importing ``citi.molora.model``, which
itself builds on ``citi.components``.
"""

from __future__ import annotations

import importlib

# name -> the module that defines it
_PUBLIC = {
    "MoloraConfig": "citi.molora.config",
    "MoloraLinear": "citi.molora.layer",
    **dict.fromkeys(
        [
            "RouterPretrainingLoss",
            "experts_are_zero",
            "importance_matrix",
            "inject_molora",
            "molora_layers",
            "molora_parameters",
            "null_mass",
            "routing_context",
            "routing_loss",
            "routing_loss_for",
        ],
        "citi.molora.model",
    ),
}
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'citi.molora' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
