"""MOLoRA: Mixture-of-LoRA experts with a null-expert router (config, layer, model)."""

from citi.molora.config import MoloraConfig
from citi.molora.layer import MoloraLinear
from citi.molora.model import (
    importance_matrix,
    inject_molora,
    molora_layers,
    molora_parameters,
    routing_context,
    routing_loss,
    routing_loss_for,
)

__all__ = [
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
