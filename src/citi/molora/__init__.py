"""MOLoRA: Mixture-of-LoRA experts with a null-expert router (config, layer, model)."""

from citi.molora.config import MoloraConfig
from citi.molora.layer import MoloraLinear
from citi.molora.model import (
    RouterPretrainingLoss,
    experts_are_zero,
    importance_matrix,
    inject_molora,
    molora_layers,
    molora_parameters,
    routing_context,
    routing_loss,
    routing_loss_for,
)

__all__ = [
    "RouterPretrainingLoss",
    "experts_are_zero",
    "MoloraConfig",
    "MoloraLinear",
    "importance_matrix",
    "inject_molora",
    "molora_layers",
    "molora_parameters",
    "routing_context",
    "routing_loss",
    "routing_loss_for",
]
