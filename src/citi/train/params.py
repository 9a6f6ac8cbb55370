"""Parameter groups by name: what each training stage unfreezes."""

from __future__ import annotations

from torch import nn

from citi.adapters import adapter_kind
from citi.components import list_components
from citi.errors import CitiError


def _component_param_names(model: nn.Module, components: list[str]) -> set[str]:
    paths = {c.name: c.path for c in list_components(model)}
    missing = [c for c in components if c not in paths]
    if missing:
        raise CitiError(f"selection names unknown component(s): {', '.join(missing[:3])}")
    return {f"{paths[c]}.{leaf}" for c in components for leaf in ("weight", "bias")}


def group_parameter_names(model: nn.Module, group: str, selection: dict) -> list[str]:
    """Names of the parameters a group trains.

    router: MOLoRA routers; molora: routers and experts; lora: PEFT LoRA A/B; uco: base weights
    of ``selection["uco"]``; selected: base weights of ``selection["molora"]``; all: every
    parameter of the model.
    """
    names = [n for n, _ in model.named_parameters()]
    if group == "router":
        out = [n for n in names if any(p.startswith("molora_router") for p in n.split("."))]
    elif group == "molora":
        out = [n for n in names if adapter_kind(n) == "molora"]
    elif group == "lora":
        out = [n for n in names if adapter_kind(n) == "lora"]
    elif group in ("uco", "selected"):
        key = "uco" if group == "uco" else "molora"
        wanted = _component_param_names(model, selection.get(key, []))
        out = [n for n in names if n in wanted]
    elif group == "all":
        out = names
    else:
        raise ValueError(f"unknown parameter group {group!r}")
    if not out:
        raise CitiError(f"stage group {group!r} selects no parameters (empty selection list?)")
    return out


def set_trainable(model: nn.Module, names: list[str]) -> list[nn.Parameter]:
    """Freeze everything except ``names``; returns those parameters in model order."""
    wanted = set(names)
    params = []
    for n, p in model.named_parameters():
        p.requires_grad_(n in wanted)
        if n in wanted:
            params.append(p)
    return params
