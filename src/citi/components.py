"""The linear components of a decoder: enumeration and name resolution.

A component is one ``nn.Linear`` inside a decoder layer, named relative to the layer list:
``layers.3.self_attn.q_proj``, ``layers.3.mlp.down_proj``. lm_head, embeddings and norms are never
components. The same names are used by importance scores, selections and adapters.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from torch import nn

from citi.errors import CitiError
from citi.molora.layer import MoloraLinear

LORA_PREFIX = "lora_"  # PEFT's LoraModel.prefix: every LoRA parameter and submodule starts with it

# Module-name suffix -> component kind. Fused projections (Phi-3) keep their fused name.
KINDS = {
    "q_proj": "q",
    "k_proj": "k",
    "v_proj": "v",
    "o_proj": "o",
    "gate_proj": "gate",
    "up_proj": "up",
    "down_proj": "down",
    "qkv_proj": "qkv",
    "gate_up_proj": "gate_up",
}
KIND_ORDER = ["q", "k", "v", "qkv", "o", "gate", "up", "gate_up", "down"]


@dataclass(frozen=True)
class Component:
    name: str  # "layers.{i}.self_attn.q_proj"
    path: str  # full module path in the model, e.g. "model.layers.3.self_attn.q_proj"
    kind: str
    layer: int
    out_features: int
    in_features: int
    numel: int  # parameters, bias included


def find_decoder_layers(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The ModuleList of decoder layers: the largest ``ModuleList`` named ``layers`` (or ``h``)."""
    candidates = [
        (path, mod)
        for path, mod in model.named_modules()
        if isinstance(mod, nn.ModuleList) and path.split(".")[-1] in ("layers", "h") and len(mod)
    ]
    if not candidates:
        top = ", ".join(name for name, _ in model.named_children()) or "nothing"
        lists = [p for p, m in model.named_modules() if isinstance(m, nn.ModuleList)]
        raise CitiError(
            f"no decoder layers found in {type(model).__name__}: expected a ModuleList named "
            f"'layers' or 'h'; found top-level modules [{top}] and ModuleLists {lists or '[]'}"
        )
    return max(candidates, key=lambda pm: len(pm[1]))


def list_components(model: nn.Module) -> list[Component]:
    """Every ``nn.Linear`` inside the decoder layers, in layer order then module order."""
    prefix, layers = find_decoder_layers(model)
    out: list[Component] = []
    for i, layer in enumerate(layers):
        for sub, mod in layer.named_modules():
            # Backbone linears only: adapter sub-modules carry a prefix and are skipped.
            if not isinstance(mod, nn.Linear) or adapter_kind(sub):
                continue
            # A PEFT LoRA wrapper keeps the original linear as ``base_layer``: the component is
            # the wrapped module's name, the path points at the linear holding the weights.
            name = sub.removesuffix(".base_layer")
            leaf = name.split(".")[-1]
            out.append(
                Component(
                    name=f"layers.{i}.{name}",
                    path=f"{prefix}.{i}.{sub}" if prefix else f"{i}.{sub}",
                    kind=KINDS.get(leaf, leaf),
                    layer=i,
                    out_features=mod.out_features,
                    in_features=mod.in_features,
                    numel=sum(p.numel() for p in mod.parameters(recurse=False)),
                )
            )
    if not out:
        raise CitiError(f"no nn.Linear modules found inside the decoder layers of {prefix!r}")
    return sorted(out, key=lambda c: component_sort_key(c.name))


def resolve_components(model: nn.Module, names: list[str]) -> dict[str, nn.Module]:
    """Map component names to modules; an unknown name is an error naming the closest valid one."""
    by_name = {c.name: c for c in list_components(model)}
    modules = dict(model.named_modules())
    resolved: dict[str, nn.Module] = {}
    for name in names:
        comp = by_name.get(name)
        if comp is None:
            close = difflib.get_close_matches(name, list(by_name), n=1, cutoff=0.0)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise CitiError(f"unknown component {name!r}{hint}")
        resolved[name] = modules[comp.path]
    return resolved


def component_sort_key(name: str) -> tuple[int, int, str]:
    """Sort components by layer, then by kind in forward order."""
    m = re.match(r"layers\.(\d+)\.(.*)$", name)
    if not m:
        return (10**9, 0, name)
    kind = KINDS.get(m.group(2).split(".")[-1], m.group(2))
    order = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    return (int(m.group(1)), order, name)


def adapter_kind(name: str) -> str | None:
    """ "molora" or "lora" when a parameter, buffer or module path belongs to an adapter (one of
    its dotted parts carries the prefix), else None: a structural test, not a substring one."""
    parts = name.split(".")
    if any(p.startswith(MoloraLinear.prefix) for p in parts):
        return "molora"
    if any(p.startswith(LORA_PREFIX) for p in parts):
        return "lora"
    return None
