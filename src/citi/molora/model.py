"""Putting MOLoRA on a model, and the routing loss (Eq. 8-9).

Saving and loading trained adapters (MOLoRA, LoRA and UCO weights together) is in
``citi.adapters``. The routing loss is collected from the layers after the forward pass: inside
``routing_context(model, attention_mask)`` every MOLoRA layer records its gates summed over the
non-padding positions, and ``routing_loss(model, task_type)`` turns the records into the loss.
No transformers model file is patched.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
from torch import nn

from citi.components import find_decoder_layers, list_components, resolve_components
from citi.errors import CitiError
from citi.molora.config import MoloraConfig
from citi.molora.layer import MoloraLinear

if TYPE_CHECKING:
    from transformers import PreTrainedModel


def _set_module(model: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, leaf = path.rpartition(".")
    setattr(model.get_submodule(parent_path) if parent_path else model, leaf, module)


def inject_molora(model: nn.Module, components: list[str], config: MoloraConfig) -> list[str]:
    """Wrap each named component in a :class:`MoloraLinear`; returns the names wrapped."""
    if not components:
        raise CitiError("MOLoRA needs at least one component (is selection.json empty?)")
    modules = resolve_components(model, components)
    paths = {c.name: c.path for c in list_components(model)}
    for name, module in modules.items():
        if isinstance(module, MoloraLinear):
            raise CitiError(f"component {name} already has a MOLoRA adapter")
        if type(module) is not nn.Linear:
            raise CitiError(f"component {name} is a {type(module).__name__}, not a plain nn.Linear")
        _set_module(model, paths[name], MoloraLinear(module, config))
    return list(modules)


def molora_layers(model: nn.Module) -> dict[str, MoloraLinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, MoloraLinear)}


def molora_parameters(model: nn.Module, part: str = "all") -> list[nn.Parameter]:
    """Adapter parameters by name: ``router``, ``experts`` (A and B) or ``all``."""
    keys = {"router": ("molora_router",), "experts": ("molora_A", "molora_B"), "all": ("molora_",)}[
        part
    ]
    return [p for n, p in model.named_parameters() if any(k in n for k in keys)]


@contextmanager
def routing_context(model: nn.Module, attention_mask: torch.Tensor):
    """Within the block, MOLoRA layers record routing statistics for ``attention_mask``."""
    layers = list(molora_layers(model).values())
    for layer in layers:
        layer.molora_mask = attention_mask
        layer.molora_z = []
    try:
        yield
    finally:
        for layer in layers:
            layer.molora_mask = None


class _StopForward(Exception):
    """Raised by a hook to end a forward pass above the last layer that has a router."""


class RouterPretrainingLoss(nn.Module):
    """Stage RP's loss, exactly, without the model's backward pass.

    In RP only the routers train and every expert's B is zero, so the LM loss does not depend on
    the routers and no component input depends on any router: the gradient of
    ``LM loss + beta * L_r`` with respect to a router is the gradient of its own routing-loss
    term, computed from its input alone. So the decoder runs under ``no_grad`` (no LM head, no
    LM loss, and no layer above the highest MOLoRA component), and the graph holds only the
    routers' softmax. Only valid while every B is zero; :func:`experts_are_zero` checks that.
    Distributed wrappers (DDP) wrap this module, so the router gradients are synchronised.
    """

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        self.model = model
        self.null_mass: torch.Tensor | None = None  # of the last forward (citi.train's log)

    def forward(self, input_ids, attention_mask, task_type) -> torch.Tensor | None:
        """The routing loss (``None`` when no MOLoRA layer has a null expert: no L_r)."""
        layers = molora_layers(self.model)
        decoder = self.model.get_decoder()
        # The decoder layer holding the highest MOLoRA component: nothing above it matters.
        prefix, blocks = find_decoder_layers(self.model)
        highest = max(int(n[len(prefix) + 1 :].split(".")[0]) for n in layers)

        def stop(*_):
            raise _StopForward

        handle = blocks[highest].register_forward_hook(stop) if highest < len(blocks) - 1 else None
        for layer in layers.values():
            layer.molora_router_only = True
        try:
            with routing_context(self.model, attention_mask), torch.no_grad():
                try:
                    decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
                except _StopForward:
                    pass
            self.null_mass = null_mass(self.model)  # for the log, before the records go
            loss = routing_loss(self.model, task_type)  # with grad: the recorded gates have it
        finally:
            for layer in layers.values():
                layer.molora_router_only = False
            if handle is not None:
                handle.remove()
        return loss


def experts_are_zero(model: nn.Module) -> bool:
    """True when every MOLoRA expert's B is zero (the state at the start of training)."""
    return all(not layer.molora_B.any() for layer in molora_layers(model).values())


def importance_matrix(task_type: torch.Tensor, experts: int, delta: float) -> torch.Tensor:
    """I (Eq. 8): rows [1+δ, 1-δ, ..., 1-δ] for tool examples, [1-δ, 1+δ, ..., 1+δ] otherwise.

    Column 0 is the null expert. Equalising Z ⊙ I pushes tool examples' mass to the experts
    (ratio (1+δ)/(1-δ)) and general examples' mass to the null expert.
    """
    tool = torch.full((experts + 1,), 1 - delta)
    tool[0] = 1 + delta
    general = 2 - tool
    rows = torch.where(task_type.view(-1, 1).bool().cpu(), tool, general)  # [batch, E]
    return rows.to(task_type.device)


def routing_loss_for(z: torch.Tensor, task_type: torch.Tensor, config: MoloraConfig):
    """One module's loss from Z = [batch, N+1] summed gates: var/mean² (cv2) or var/mean."""
    weighted = (z * importance_matrix(task_type, z.shape[1] - 1, config.delta).to(z)).flatten()
    mean = weighted.mean()
    var = weighted.var() if weighted.numel() > 1 else weighted.new_zeros(())
    denom = mean**2 if config.routing_loss == "cv2" else mean
    return var / (denom + 1e-10)


def null_mass(model: nn.Module) -> torch.Tensor | None:
    """The share of the routers' probability on the null expert, G(x)[0], over the tokens of
    the last forward recorded in :func:`routing_context` (mean over MOLoRA modules); None
    without a null expert or a record. Read before :func:`routing_loss`, which clears them."""
    shares = [
        z[:, 0].sum() / z.sum().clamp_min(1e-12)
        for layer in molora_layers(model).values()
        if layer.molora_config.null_expert
        for z in layer.molora_z
    ]
    return torch.stack(shares).mean().detach() if shares else None


def routing_loss(model: nn.Module, task_type: torch.Tensor) -> torch.Tensor | None:
    """Σ over MOLoRA modules of the routing loss of the last forward (``None`` if not recorded)."""
    losses = []
    for layer in molora_layers(model).values():
        if not layer.molora_config.null_expert:
            continue  # "w/o L_r": no null expert, no routing loss
        for z in layer.molora_z:
            losses.append(routing_loss_for(z, task_type, layer.molora_config))
        layer.molora_z = []
    return torch.stack(losses).sum() if losses else None
