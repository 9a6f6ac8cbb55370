"""``--compile``: torch.compile a model in place, for training (``citi train --compile``) and
evaluation generation (``citi eval --compile``).

Off by default (docs/guides/performance.md has the measured ratio and the command).
``nn.Module.compile`` keeps the module and its state-dict keys, so checkpoints
and adapters are saved and loaded exactly as without it."""

from __future__ import annotations

from torch import nn


def compile_in_place(module: nn.Module) -> nn.Module:
    """Compile ``module``'s forward with dynamic shapes (every batch has its own width and every
    generation step its own cache length, so static shapes would recompile at each)."""
    module.compile(dynamic=True)
    return module
