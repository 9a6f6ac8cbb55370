"""The MOLoRA layer: a frozen linear component plus a gated mixture of LoRA experts (Eq. 6-7).

    y = W0 x + b + Σ_{i=1..N} G(x)[i] · B_i A_i x · alpha / r,   G(x) = softmax(R x)

R is a bias-free router with N+1 outputs (N without the null expert). All experts are computed
together: A is stored stacked as one [N·r, in] matrix and B as one [out, N·r] matrix, so a forward
is two matmuls whatever N is, with the gates applied in the rank space in between.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from citi.molora.config import MoloraConfig


def mixture_delta(
    x: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    router: nn.Module,
    config: MoloraConfig,
    dropout: nn.Module | None = None,
    return_gates: bool = False,
):
    """Σ_i G(x)[i] · B_i A_i x · alpha / r for x [..., in], A [N·r, in], B [out, N·r]: the mixture
    both citi's MoloraLinear and the PEFT layer (citi.molora.peft) add to W0 x + b. The adapter
    runs in A's dtype (x is cast when they differ) and the result comes back in x's dtype."""
    n, r = config.num_experts, config.rank
    # Under autocast the matmuls pick their own dtype; otherwise a bf16 x meets float32 weights
    # (PEFT keeps adapters in float32 on a bf16 model) and is cast in and back out.
    cast = x.dtype != a.dtype and not torch.is_autocast_enabled(x.device.type)
    x_in = x.to(a.dtype) if cast else x
    gates = F.softmax(router(x_in).float(), dim=-1)  # [..., E], float32 for a stable softmax
    expert_gates = gates[..., 1:] if config.null_expert else gates  # [..., N]
    ax = F.linear(dropout(x_in) if dropout is not None else x_in, a)  # [..., N*r]
    ax = ax.unflatten(-1, (n, r)) * expert_gates.to(ax.dtype).unsqueeze(-1)  # [..., N, r]
    delta = F.linear(ax.flatten(-2), b) * config.scaling  # [..., out]
    delta = delta.to(x.dtype) if cast else delta
    return (delta, gates) if return_gates else delta


class MoloraLinear(nn.Linear):
    """Replaces an ``nn.Linear`` in place, sharing its weight and bias Parameters, so the base
    weights keep their state-dict names and every new parameter is prefixed ``molora_``."""

    # Every parameter, buffer and submodule the layer adds starts with it (PEFT's
    # ``BaseTuner.prefix``): citi.components.adapter_kind tells adapter tensors apart by it.
    prefix = "molora_"
    adapter_layer_names = ("molora_A", "molora_B", "molora_router")

    def __init__(self, base: nn.Linear, config: MoloraConfig):
        nn.Module.__init__(self)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight
        self.bias = base.bias
        self.molora_config = config
        n, r = config.num_experts, config.rank
        factory: dict[str, Any] = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.molora_A = nn.Parameter(torch.empty(n * r, self.in_features, **factory))
        self.molora_B = nn.Parameter(torch.zeros(self.out_features, n * r, **factory))
        self.molora_router = nn.Linear(
            self.in_features, config.router_outputs, bias=False, **factory
        )
        self.molora_dropout = nn.Dropout(config.dropout) if config.dropout else nn.Identity()
        for i in range(n):  # each expert's A initialised like its own nn.Linear(in, r)
            nn.init.kaiming_uniform_(self.molora_A[i * r : (i + 1) * r], a=math.sqrt(5))
        # Routing statistics for the routing loss, set by citi.molora.model.routing_context.
        self.molora_mask: torch.Tensor | None = None  # [batch, seq] or None (inference)
        self.molora_z: list[torch.Tensor] = []  # per call: gates summed over tokens, [batch, E]
        # Router-only mode (stage RP, see citi.molora.model.RouterPretrainingLoss): the forward
        # runs without autograd and only the router's gates are computed with grad.
        self.molora_router_only = False

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        """Router probabilities, [..., E], computed in float32 for a stable softmax. A bf16 x
        meets a float32 router (trained tensors keep float32 at evaluation) outside autocast:
        cast it as :func:`mixture_delta` does."""
        w = self.molora_router.weight
        if x.dtype != w.dtype and not torch.is_autocast_enabled(x.device.type):
            x = x.to(w.dtype)
        return F.softmax(self.molora_router(x).float(), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.molora_config
        out = F.linear(x, self.weight, self.bias)  # [..., out]
        if self.molora_router_only:
            # B = 0 in RP, so the experts add exactly nothing and the output is W0 x + b; the
            # gates alone need grad, and only through the router (x is a constant here).
            with torch.enable_grad():
                self._record(self.gates(x.detach()))
            return out
        delta, gates = mixture_delta(
            x, self.molora_A, self.molora_B, self.molora_router, cfg, self.molora_dropout, True
        )
        if self.molora_mask is not None:
            self._record(gates)
        return out + delta

    def _record(self, gates: torch.Tensor) -> None:
        mask = self.molora_mask
        if mask is None or gates.dim() != 3 or mask.shape != gates.shape[:2]:
            return  # not a [batch, seq, E] call over the masked batch (e.g. a generation step)
        # Z = gates summed over the non-padding positions (the authors' code also summed
        # padding, which makes the loss depend on how much a batch was padded).
        self.molora_z.append((gates * mask.unsqueeze(-1).to(gates.dtype)).sum(1))  # [batch, E]

    def extra_repr(self) -> str:
        c = self.molora_config
        return (
            f"in={self.in_features}, out={self.out_features}, experts={c.num_experts}, "
            f"rank={c.rank}, alpha={c.alpha}, null_expert={c.null_expert}"
        )

    def expert_delta(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """B_i A_i x · alpha / r for expert ``i`` alone (for analysis and tests)."""
        r = self.molora_config.rank
        a = self.molora_A[i * r : (i + 1) * r]  # [r, in]
        b = self.molora_B[:, i * r : (i + 1) * r]  # [out, r]
        return F.linear(F.linear(x, a), b) * self.molora_config.scaling
