"""FSDP2 sharding for every method (``--sharding fsdp``), on GPUs and on CPUs alike.

accelerate only shards on GPU-type devices, and ``accelerate launch --use_fsdp`` on a CPU machine
quietly runs independent, unsharded copies. So citi applies PyTorch's own FSDP2
(``torch.distributed.fsdp.fully_shard``) itself, in this one place, over the process group that
accelerate (or torchrun) started: every decoder layer is one FSDP unit, then the root (embeddings,
final norm, LM head). FSDP2 gathers the root's parameters in the model's own forward, so citi's
losses go through it for a sharded model (see citi.loss.label_token_ce). FSDP2 shards per
parameter, so a unit may mix trainable and frozen tensors (MOLoRA routers and experts, PEFT
LoRA, UCO components beside frozen weights), and which of them train may change from stage to
stage. Gradients are reduce-scattered as DDP would all-reduce them (averaged over processes), so
a sharded run follows the same loss curve as DDP. Stage RP runs its full backward path here.

Checkpoints of a sharded run are written with ``torch.distributed.checkpoint`` (every process
writes its own shards of the trained tensors and of the optimizer state; loading reshards); the
final adapter and snapshots are gathered and written once, unsharded, in citi's usual format.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import torch
import torch.distributed as dist
from torch import nn

from citi.errors import CitiError

if TYPE_CHECKING:
    from torch.distributed.tensor import DTensor

SHARDING = ("none", "fsdp")


def is_dtensor(t) -> TypeGuard[DTensor]:
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)


def refuse_accelerate_fsdp(accelerator) -> None:
    """accelerate's own FSDP mode would wrap each stage's loss module anew around a model it
    already sharded; citi shards once, itself (``--sharding fsdp``)."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.FSDP:
        raise CitiError(
            "accelerate's FSDP mode cannot re-shard citi's per-stage trainables; launch with "
            "configs/accelerate/fsdp.yaml (multi-GPU) and pass --sharding fsdp"
        )


def shard_model(model: nn.Module, device: torch.device) -> dict:
    """Apply FSDP2 to ``model`` in place over all processes; returns what was sharded."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from citi.components import find_decoder_layers

    if not dist.is_available() or not dist.is_initialized():
        raise CitiError(
            "--sharding fsdp: no process group; launch with torchrun or `accelerate launch` "
            "(see configs/accelerate/)"
        )
    world = dist.get_world_size()
    mesh = init_device_mesh(torch.device(device).type, (world,))
    _, layers = find_decoder_layers(model)
    for layer in layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)  # the root: embeddings, final norm, LM head
    return sharding_summary(model)


def sharding_summary(model: nn.Module) -> dict:
    """How the parameters are laid out: world size and the share of elements held here."""
    total = local = sharded = 0
    for p in model.parameters():
        total += p.numel()
        if is_dtensor(p):
            sharded += 1
            local += p.to_local().numel()
        else:
            local += p.numel()
    world = dist.get_world_size() if dist.is_initialized() else 1
    return {
        "strategy": "fsdp",
        "world_size": world,
        "dtensor_parameters": sharded,
        "local_fraction": round(local / max(total, 1), 4),
    }


def full_tensor(t: torch.Tensor) -> torch.Tensor:
    """A DTensor gathered whole (a collective: every process must call it), else ``t``."""
    return t.full_tensor() if is_dtensor(t) else t


def gathered_state(model: nn.Module, keep) -> dict[str, torch.Tensor]:
    """The state-dict entries ``keep(name)`` selects, unsharded, on the CPU. Every process must
    call it (the gathers are collectives); every process gets the whole result."""
    return {
        k: full_tensor(v).detach().cpu().contiguous()
        for k, v in model.state_dict().items()
        if keep(k)
    }


# -- sharded checkpoints ----------------------------------------------------------------------
def save_sharded_checkpoint(
    path: Path, model, keep, progress: dict, optimizer=None, scheduler=None
) -> None:
    """Every process writes its shards (DCP), then the main process writes the position, the
    scheduler and its RNG, and swaps the new checkpoint in for the old one (atomic per run)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    rank = dist.get_rank()
    tmp = path.with_name(path.name + ".writing")
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    dist.barrier()
    model_state, optim_state = get_state_dict(model, optimizer or [])
    state: dict[str, Any] = {"model": {k: v for k, v in model_state.items() if keep(k)}}
    if optimizer is not None:
        state["optimizer"] = optim_state
    dcp.save(state, checkpoint_id=str(tmp / "shards"))
    torch.save(torch.get_rng_state(), tmp / f"rng-{rank}.pt")
    version, rstate, gauss = random.getstate()
    (tmp / f"rng-{rank}.json").write_text(
        json.dumps({"version": version, "state": list(rstate), "gauss": gauss})
    )
    dist.barrier()
    if rank == 0:
        if scheduler is not None:
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        (tmp / "progress.json").write_text(
            json.dumps({**progress, "sharded": True, "world_size": dist.get_world_size()}) + "\n"
        )
        old = path.with_name(path.name + ".old")
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    dist.barrier()


def check_sharded_checkpoint(path: Path, progress: dict) -> None:
    if not progress.get("sharded"):
        raise CitiError(f"{path}: an unsharded checkpoint; resume it without --sharding fsdp")
    if progress.get("world_size") != dist.get_world_size():
        raise CitiError(
            f"{path}: written by {progress.get('world_size')} processes, resumed with "
            f"{dist.get_world_size()}; resume with the same number of processes"
        )


def load_sharded_model(path: Path, model, keep) -> None:
    """Restore the trained tensors (resharded into this run's layout) and this process's RNG."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        set_model_state_dict,
    )

    state = {"model": {k: v for k, v in get_model_state_dict(model).items() if keep(k)}}
    dcp.load(state, checkpoint_id=str(path / "shards"))
    set_model_state_dict(model, state["model"], options=StateDictOptions(strict=False))
    rank = dist.get_rank()
    from citi.train.checkpoint import _safe_load

    torch.set_rng_state(_safe_load(path / f"rng-{rank}.pt"))
    py = json.loads((path / f"rng-{rank}.json").read_text())
    random.setstate((int(py["version"]), tuple(int(x) for x in py["state"]), py["gauss"]))


def load_sharded_optimizer(path: Path, model, optimizer, scheduler) -> bool:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    from citi.train.checkpoint import _safe_load

    if not (path / "scheduler.pt").is_file():
        return False
    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"optimizer": optim_state}
    dcp.load(state, checkpoint_id=str(path / "shards"))
    set_state_dict(
        model, optimizer, model_state_dict=model_state, optim_state_dict=state["optimizer"]
    )
    scheduler.load_state_dict(_safe_load(path / "scheduler.pt"))
    return True
