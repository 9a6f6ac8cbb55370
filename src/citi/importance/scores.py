"""Gradient-based component importance (paper Sec. 2.2, Eq. 4).

For a bias-free linear component y = W x, Σ_t y_t · g_t = Σ_ij W_ij ∂L/∂W_ij, where g_t = ∂L/∂y_t
at token t. With a bias, y_t = W x_t + b and the identity still holds with θ = (W, b). So both
scores come from hooks on the components' outputs, and no weight gradient is ever materialised:

- ``taylor`` (the paper, default): I_h = |Σ_examples Σ_t y_t · g_t|, absolute value outside the sum.
- ``token-abs`` (the authors' code): I_h = Σ_examples Σ_t |y_t · g_t|, absolute value per token.

Sums run over every non-padding position of every example (the loss is on label tokens only, but
prompt positions carry gradient through attention). Accumulation is in float64.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
from torch import nn
from tqdm.auto import tqdm

from citi.components import list_components, resolve_components
from citi.errors import CitiError
from citi.loss import label_token_loss

if TYPE_CHECKING:
    from transformers import PreTrainedModel

SCORES = ("taylor", "token-abs")


class ImportanceHooks:
    """Forward/backward hooks on a set of linear components that accumulate both scores.

    The forward hook keeps a detached view of each output (sharing storage, so no copy; where
    autograd saves the output anyway, e.g. gate/up before SiLU and the product, it costs nothing)
    and registers a gradient hook on it. The gradient hook forms y·g per token, adds it to the
    running sums and drops the stored output at once.
    """

    def __init__(self, modules: dict[str, nn.Module]):
        self.names = list(modules)
        self.modules = modules
        weight = next(iter(modules.values())).weight
        if not isinstance(weight, torch.Tensor):
            raise CitiError(f"{self.names[0]}: not a linear component (no weight tensor)")
        device = weight.device
        # [n_components, 2]: column 0 signed sum (taylor before |.|), column 1 sum of |y·g|.
        self.sums = torch.zeros(len(self.names), 2, dtype=torch.float64, device=device)
        self.mask: torch.Tensor | None = None  # [batch, seq] of the current batch
        self._handles: list = []
        self._stored: dict[int, list[torch.Tensor]] = {}

    def _forward_hook(self, index: int):
        def hook(module, inputs, output):
            if not output.requires_grad:
                return
            self._stored.setdefault(index, []).append(output.detach())
            output.register_hook(lambda grad: self._backward(index, grad))

        return hook

    def _backward(self, index: int, grad: torch.Tensor) -> None:
        y = self._stored[index].pop()  # [batch, seq, out]
        per_token = (y.float() * grad.float()).sum(-1)  # [batch, seq]
        if self.mask is not None:
            per_token = per_token * self.mask
        self.sums[index, 0] += per_token.sum(dtype=torch.float64)
        self.sums[index, 1] += per_token.abs().sum(dtype=torch.float64)

    @contextmanager
    def attached(self):
        self._handles = [
            mod.register_forward_hook(self._forward_hook(i))
            for i, mod in enumerate(self.modules.values())
        ]
        try:
            yield self
        finally:
            for h in self._handles:
                h.remove()
            self._handles = []
            self._stored.clear()

    def scores(self, score: str) -> dict[str, float]:
        if score not in SCORES:
            raise ValueError(f"unknown score {score!r}; choose one of {SCORES}")
        col = self.sums[:, 0].abs() if score == "taylor" else self.sums[:, 1]
        return dict(zip(self.names, col.tolist(), strict=True))


@contextmanager
def frozen_with_input_grads(model: PreTrainedModel):
    """Freeze every parameter and make the embedding output require grad, so that activations
    (not weights) carry gradients; restores ``requires_grad`` afterwards."""
    saved = {p: p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    handle = model.get_input_embeddings().register_forward_hook(
        lambda module, inputs, output: output.requires_grad_(True)
    )
    try:
        yield model
    finally:
        handle.remove()
        for p, flag in saved.items():
            p.requires_grad_(flag)


def importance_sums(
    model: PreTrainedModel,
    batches: Iterable[dict[str, torch.Tensor]],
    components: Sequence[str],
    progress: bool | str = False,
    total: int | None = None,
) -> ImportanceHooks:
    """Run forward+backward over ``batches`` and return the hooks holding both accumulated sums."""
    modules = resolve_components(model, list(components))
    hooks = ImportanceHooks(modules)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()  # no dropout: the scores must be deterministic
    desc = progress if isinstance(progress, str) else "importance"
    with frozen_with_input_grads(model), hooks.attached():
        for batch in tqdm(batches, desc=desc, total=total, disable=not progress, leave=False):
            batch = {k: v.to(device) for k, v in batch.items()}
            hooks.mask = batch["attention_mask"].float()
            loss = label_token_loss(model, batch)
            loss.backward()
    model.train(was_training)
    return hooks


def compute_importance(
    model: PreTrainedModel,
    batches: Iterable[dict[str, torch.Tensor]],
    score: str = "taylor",
    components: Sequence[str] | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Importance of every component (or of ``components``) over ``batches``; see module doc."""
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; choose one of {SCORES}")
    if components is None:
        components = [c.name for c in list_components(model)]
    return importance_sums(model, batches, components, progress).scores(score)


def normalize(scores: dict[str, float]) -> dict[str, float]:
    """Divide by the sum over components (paper: per-ability normalisation before Eq. 10)."""
    total = sum(scores.values())
    if total <= 0:
        raise ValueError("importance scores sum to zero: no gradient reached the components")
    return {k: v / total for k, v in scores.items()}


def combine_general(
    normalized: dict[str, dict[str, float]], tool: str = "tool"
) -> dict[str, float]:
    """C_h (Eq. 10): the sum of the normalised scores of every ability except ``tool``."""
    general = [a for a in normalized if a != tool]
    if not general:
        raise ValueError("C_h needs at least one general ability besides the tool ability")
    names = normalized[general[0]]
    return {h: sum(normalized[a][h] for a in general) for h in names}


def ranks(scores: dict[str, float]) -> dict[str, int]:
    """Rank 1 = most important; ties broken by name so rankings are reproducible."""
    order = sorted(scores, key=lambda h: (-scores[h], h))
    return {h: i + 1 for i, h in enumerate(order)}
