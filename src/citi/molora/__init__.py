"""MOLoRA: Mixture-of-LoRA experts with a null-expert router (config, layer, model)."""

from citi.molora.config import MoloraConfig
from citi.molora.layer import MoloraLinear
from citi.molora.model import (
    adapter_state,
    importance_matrix,
    inject_molora,
    load_adapter,
    molora_layers,
    molora_parameters,
    routing_context,
    routing_loss,
    routing_loss_for,
    save_adapter,
)

__all__ = [
    "MoloraConfig",
    "MoloraLinear",
    "adapter_state",
    "importance_matrix",
    "inject_molora",
    "load_adapter",
    "molora_layers",
    "molora_parameters",
    "routing_context",
    "routing_loss",
    "routing_loss_for",
    "save_adapter",
]
