"""One stage of a run in progress, and the losses of one of its micro-batches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from citi.molora import null_mass, routing_loss
from citi.train.methods import Stage


@dataclass
class StageRun:
    """One stage in progress: what :meth:`Trainer._setup_stage` builds for its micro-batches
    and optimizer steps."""

    index: int
    stage: Stage
    params: list  # the trainable parameters
    optimizer: torch.optim.Optimizer
    scheduler: Any  # an LRScheduler, or accelerate's AcceleratedScheduler wrapping one
    loss_module: torch.nn.Module  # as the strategy prepared it
    forward_only: bool  # RP without the model's backward pass
    use_rl: bool  # add beta * the routing loss
    beta: float
    per_epoch: int  # micro-batches per epoch
    total_micro: int  # micro-batches in the stage
    total_steps: int  # optimizer steps in the stage
    window: list = field(default_factory=list)  # this optimizer step's micro-batch losses
    step_start: float = 0.0

    def ends_step(self, micro: int, grad_accum: int) -> bool:
        return (micro + 1) % grad_accum == 0 or micro + 1 == self.total_micro

    def micro_in_step(self, micro: int, grad_accum: int) -> int:
        """How many micro-batches the optimizer step holding ``micro`` averages over."""
        group_start = micro // grad_accum * grad_accum
        return min(grad_accum, self.total_micro - group_start)


def micro_batch_losses(run: StageRun, model, batch: dict) -> dict:
    """The losses of one micro-batch: ``loss`` (what is back-propagated), ``lm_loss`` (None
    in forward-only RP, where the LM loss is not computed) and ``routing_loss``; with them the
    router's ``null_mass`` (None where no null-expert routing is recorded)."""
    if run.forward_only:
        rl = run.loss_module(batch["input_ids"], batch["attention_mask"], batch["task_type"])
        inner = getattr(run.loss_module, "module", run.loss_module)  # under DDP's wrapper
        mass = inner.null_mass
        return {"loss": run.beta * rl, "lm_loss": None, "routing_loss": rl, "null_mass": mass}
    lm_loss = run.loss_module(batch["input_ids"], batch["attention_mask"], batch["labels"])
    mass = null_mass(model) if run.use_rl else None
    rl = routing_loss(model, batch["task_type"]) if run.use_rl else None
    loss = lm_loss + run.beta * rl if rl is not None else lm_loss
    return {"loss": loss, "lm_loss": lm_loss, "routing_loss": rl, "null_mass": mass}
