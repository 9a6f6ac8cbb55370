"""How a run's processes share the model: chosen once, when the trainer starts.

``LocalStrategy`` is one process, or DDP through ``accelerate`` (every process holds the whole
model; the main process writes checkpoints and adapters). ``ShardedStrategy`` is FSDP2
(``--sharding fsdp``, see citi.train.sharding): every process holds shards, writes its own part
of a checkpoint and takes part in every gather. The trainer asks its strategy, never the
``sharding`` setting, so a third way (e.g. tensor parallel) is one more class here.
"""

from __future__ import annotations

from pathlib import Path

from citi.train import sharding
from citi.train.checkpoint import load_checkpoint, load_optimizer, save_checkpoint
from citi.train.setup import is_trained


class LocalStrategy:
    """Whole model in every process; DDP synchronises gradients through accelerate's wrapper."""

    # Stage RP may skip the model's backward pass (see Trainer._forward_only).
    allows_forward_only = True

    def __init__(self, accelerator):
        sharding.refuse_accelerate_fsdp(accelerator)
        self.accelerator = accelerator
        self.base_keys: set[str] = set()

    def setup_model(self, model, base_keys: set[str]) -> dict | None:
        """Take the built model; returns how its parameters lie (None: whole, everywhere)."""
        self.base_keys = base_keys
        return None

    def trained(self, name: str) -> bool:
        return is_trained(name, self.base_keys)

    @property
    def evaluates(self) -> bool:
        """Whether this process runs the evaluation forward passes."""
        return self.accelerator.is_main_process

    def prepare(self, loss_module, optimizer, scheduler):
        """A stage's loss module, optimizer and scheduler, ready for this strategy."""
        acc = self.accelerator
        acc.free_memory()  # drop the previous stage's wrapper: DDP must see the new trainables
        return acc.prepare(loss_module, optimizer, scheduler)

    def grad_norm(self, norm):
        return norm

    def gather(self, model) -> dict | None:
        """The trained tensors for an adapter file; None: the main process reads the model."""
        return None

    def save(self, path: Path, model, progress: dict, optimizer=None, scheduler=None) -> None:
        if self.accelerator.is_main_process:
            save_checkpoint(path, model, self.base_keys, progress, optimizer, scheduler)

    def load(self, path: Path, model, progress: dict) -> dict:
        """Restore the trained tensors and RNG; returns the checkpoint's progress."""
        return load_checkpoint(path, model)

    def load_optimizer(self, path: Path, model, optimizer, scheduler) -> None:
        load_optimizer(path, optimizer, scheduler)


class ShardedStrategy(LocalStrategy):
    """FSDP2 over all processes: every process holds shards and joins every collective."""

    # FSDP2 reduce-scatters gradients from hooks on the layers' outputs, which a no_grad
    # decoder pass never creates: stage RP runs its full backward path.
    allows_forward_only = False

    def setup_model(self, model, base_keys: set[str]) -> dict:
        self.base_keys = base_keys
        return sharding.shard_model(model, self.accelerator.device)

    @property
    def evaluates(self) -> bool:
        return True  # every process takes part in a sharded forward

    def prepare(self, loss_module, optimizer, scheduler):
        self.accelerator.free_memory()
        return loss_module, optimizer, scheduler  # FSDP2 synchronises gradients itself

    def grad_norm(self, norm):
        return sharding.full_tensor(norm) if norm is not None else None  # over all shards

    def gather(self, model) -> dict:
        return sharding.gathered_state(model, self.trained)

    def save(self, path: Path, model, progress: dict, optimizer=None, scheduler=None) -> None:
        sharding.save_sharded_checkpoint(path, model, self.trained, progress, optimizer, scheduler)

    def load(self, path: Path, model, progress: dict) -> dict:
        sharding.check_sharded_checkpoint(path, progress)
        sharding.load_sharded_model(path, model, self.trained)
        return progress

    def load_optimizer(self, path: Path, model, optimizer, scheduler) -> None:
        sharding.load_sharded_optimizer(path, model, optimizer, scheduler)


def make_strategy(name: str, accelerator) -> LocalStrategy:
    """The strategy of ``TrainConfig.sharding`` ("none" or "fsdp")."""
    return ShardedStrategy(accelerator) if name == "fsdp" else LocalStrategy(accelerator)
