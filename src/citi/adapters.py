"""Trained-model checkpoints as a diff against the base model: ``adapter.safetensors`` holds every
tensor a method trains (MOLoRA and LoRA weights, UCO or fully fine-tuned base weights) and
``adapter_config.json`` says how to rebuild the modules (MOLoRA and LoRA settings, components).

``load_adapter(base_model, dir)`` re-injects the adapters and loads the tensors, so the result
reproduces the trained model's logits exactly; no labels are needed at inference.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from citi.components import adapter_kind
from citi.errors import CitiError
from citi.io import atomic_path
from citi.molora.config import MoloraConfig
from citi.molora.model import inject_molora
from citi.precision import run_in_float32

ADAPTER_WEIGHTS = "adapter.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


def inject_lora(model: nn.Module, targets: list[str], rank: int, alpha: float) -> None:
    """PEFT LoRA on the given full module paths, injected in place (the model keeps its class)."""
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,  # type: ignore[arg-type]  # PEFT annotates int; it scales by alpha / r
        lora_dropout=0.0,
        target_modules=targets,
        bias="none",
    )
    inject_adapter_in_model(config, model)


def diff_state(model: nn.Module, base_keys: set[str]) -> dict[str, torch.Tensor]:
    """Adapter tensors plus the base tensors named in ``base_keys``, detached, on the CPU."""
    return {
        k: v.detach().cpu().contiguous()
        for k, v in model.state_dict().items()
        if adapter_kind(k) or k in base_keys
    }


def save_adapter(
    model: nn.Module,
    out_dir: str | Path,
    meta: dict,
    base_keys: set[str],
    state: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write the adapter directory atomically; ``meta`` goes into adapter_config.json. ``state``:
    the tensors to write when they were gathered already (a sharded run), else from ``model``."""
    out = Path(out_dir)
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        save_file(state or diff_state(model, base_keys), str(tmp / ADAPTER_WEIGHTS))
        (tmp / ADAPTER_CONFIG).write_text(json.dumps(meta, indent=2) + "\n")
    return out


def read_adapter_config(adapter_dir: str | Path) -> dict:
    """adapter_config.json, checked by shape: one error line naming the file when it is not."""
    from citi.io import read_json

    adir = Path(adapter_dir)
    if not (adir / ADAPTER_CONFIG).is_file() or not (adir / ADAPTER_WEIGHTS).is_file():
        raise CitiError(f"--adapter: {adir} has no {ADAPTER_CONFIG} and {ADAPTER_WEIGHTS}")
    path = adir / ADAPTER_CONFIG
    meta = read_json(path)
    problem = _config_problem(meta)
    if problem:
        raise CitiError(f"{path}: {problem}")
    return meta


def _config_problem(meta) -> str | None:
    def names(value) -> bool:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)

    if not isinstance(meta, dict):
        return f"expected an object, got {type(meta).__name__}"
    if not isinstance(meta.get("base_model"), str) or not meta["base_model"]:
        return "'base_model' must be the base model's name (a string)"
    if not isinstance(meta.get("method", ""), str):
        return "'method' must be a string"
    for key in ("molora_components", "uco_components"):
        if meta.get(key) is not None and not names(meta[key]):
            return f"'{key}' must be a list of component names"
    molora, lora = meta.get("molora"), meta.get("lora")
    if molora is not None:
        if not isinstance(molora, dict):
            return "'molora' must be an object of MOLoRA settings"
        if not names(meta.get("molora_components")):
            return "'molora_components' must be a list of component names"
        try:
            MoloraConfig(**molora)
        except TypeError as err:
            return f"'molora': {err}".replace("MoloraConfig.__init__() ", "")
        except CitiError as err:
            return f"'molora': {err}"
    if lora is not None:
        if not isinstance(lora, dict) or not names(lora.get("targets")):
            return "'lora' must be an object with 'targets' (module names), 'rank' and 'alpha'"
        rank, alpha = lora.get("rank"), lora.get("alpha")
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            return f"'lora.rank' must be a whole number >= 1, got {rank!r}"
        if (
            isinstance(alpha, bool)
            or not isinstance(alpha, int | float)
            or not math.isfinite(alpha)
            or alpha <= 0
        ):
            return f"'lora.alpha' must be a finite number > 0, got {alpha!r}"
    return None


def apply_adapter_modules(model: nn.Module, meta: dict) -> None:
    """Inject the MOLoRA / LoRA modules an adapter_config.json describes (weights not loaded)."""
    if meta.get("molora"):
        inject_molora(model, meta["molora_components"], MoloraConfig(**meta["molora"]))
    if meta.get("lora"):
        lora = meta["lora"]
        modules = {name for name, _ in model.named_modules()}
        absent = [t for t in lora["targets"] if t not in modules]
        if absent:
            raise CitiError(
                f"--adapter: its LoRA targets module {absent[0]!r}, which this model lacks "
                f"(an adapter for another model?)"
            )
        inject_lora(model, lora["targets"], lora["rank"], lora["alpha"])


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file; a truncated, empty or foreign file is one error line naming it."""
    from safetensors import SafetensorError

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CitiError(f"{path}: not a readable safetensors file ({reason})") from None


def load_adapter(model: nn.Module, adapter_dir: str | Path) -> dict:
    """Rebuild the trained model on ``model`` (a fresh base model); returns adapter_config."""
    meta = read_adapter_config(adapter_dir)
    apply_adapter_modules(model, meta)
    state = read_weights(Path(adapter_dir) / ADAPTER_WEIGHTS)
    own = model.state_dict()
    unknown = sorted(set(state) - set(own))
    if unknown:
        raise CitiError(
            f"--adapter: {len(unknown)} tensor(s) do not fit this model, e.g. {unknown[0]}"
        )
    missing = sorted(k for k in own if adapter_kind(k) and k not in state)
    if missing:
        raise CitiError(
            f"--adapter: adapter lacks {len(missing)} adapter tensor(s), e.g. {missing[0]}"
        )
    for k, v in state.items():
        if own[k].shape != v.shape:
            raise CitiError(
                f"--adapter: {k} has shape {tuple(v.shape)}, the model expects "
                f"{tuple(own[k].shape)}"
            )
    keep_trained_in_float32(model, state)
    model.load_state_dict(state, strict=False)
    return meta


@torch.no_grad()
def keep_trained_in_float32(model: torch.nn.Module, trained: dict[str, torch.Tensor]) -> int:
    """Before a run's trained tensors are loaded into a model held in bf16: give every one saved
    in float32 (``trained``: state-dict key -> tensor) a float32 parameter, so loading copies it
    exactly instead of rounding it to bf16. Returns how many were kept in float32.

    Why: a fine-tuning update is often smaller than one bf16 step of the weight it changes (on
    SmolLM2 the median spacing is about 5e-4; FT at 2e-5 over 128 steps moves a weight by at most
    about 1.3e-3), so rounding would erase most of what FT and UCO learned while LoRA and MOLoRA,
    kept in separate tensors, survive. A module holding such a base weight computes in float32
    (:func:`citi.precision.run_in_float32`); adapter tensors are cast by the adapter layers
    themselves. When a run trained every base weight (FT) the whole model is float32: nothing is
    left frozen to store in bf16."""
    params = dict(model.named_parameters(remove_duplicate=False))
    low = {
        k
        for k, v in trained.items()
        if k in params
        and v.dtype == torch.float32
        and params[k].dtype != torch.float32
        and params[k].is_floating_point()
    }
    if not low:
        return 0
    if trains_every_base_weight(model, trained):
        model.float()  # load_for_eval loads such a base in float32 instead (exact buffers too)
        return len(low)
    # By identity, not by name: a tied parameter (SmolLM2's embed_tokens and lm_head) is saved
    # under one name, and every module holding it must compute in float32 once it is float32.
    low_ids = {id(params[k]) for k in low}
    fallback = next(p.dtype for p in params.values() if id(p) not in low_ids)
    for key in low:
        params[key].data = params[key].data.float()
    for prefix, module in model.named_modules():
        own = {
            key: p
            for n, p in module.named_parameters(recurse=False)
            if not adapter_kind(key := f"{prefix}.{n}" if prefix else n)
        }
        if any(id(p) in low_ids for p in own.values()):
            # Its untrained tensors too (a bias a stage left alone): exact, one dtype per matmul.
            for p in own.values():
                p.data = p.data.float()
            run_in_float32(module, fallback)
    return len(low)


def trains_every_base_weight(model: nn.Module, trained) -> bool:
    """Whether ``trained`` (state-dict keys, or an adapter directory whose weights file holds
    them) covers every base parameter of ``model``: an FT run, evaluated in float32 throughout
    (a bf16 model cast up afterwards would keep its rounded buffers, e.g. rotary frequencies)."""
    if isinstance(trained, str | Path):
        trained = saved_tensor_names(trained)
    trained = set(trained)
    # Tied parameters are saved under one of their names (safetensors keeps no shared tensors),
    # so a parameter counts as trained when any of its names was saved.
    names: dict[int, list[str]] = {}
    for n, p in model.named_parameters(remove_duplicate=False):
        if not adapter_kind(n):
            names.setdefault(id(p), []).append(n)
    return bool(names) and all(any(n in trained for n in ns) for ns in names.values())


def saved_tensor_names(adapter_dir: str | Path) -> set[str]:
    """The names of the tensors in an adapter's weights file, read from its header only."""
    from safetensors import SafetensorError, safe_open

    path = Path(adapter_dir) / ADAPTER_WEIGHTS
    try:
        with safe_open(str(path), framework="pt") as fh:
            return set(fh.keys())
    except (SafetensorError, OSError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CitiError(f"{path}: not a readable safetensors file ({reason})") from None


def load_for_eval(
    model: str,
    adapter: str | Path | None,
    dtype: str = "auto",
    device: str | None = None,
    precision: str = "fp32",
):
    """A base model in eval mode, with a citi adapter (MOLoRA / LoRA / UCO / FT weights) applied
    if given (a ``citi train`` run directory or its ``final/``).

    ``precision``: resolved (fp32 or bf16). bf16 loads the frozen weights in bfloat16; what the
    run trained keeps float32 (FT: everything; see :func:`keep_trained_in_float32`)."""
    from citi.models import load_model
    from citi.precision import weights_dtype

    weights = weights_dtype(dtype, precision)
    loaded = load_model(model, dtype=weights, device=device)
    if adapter:
        final = Path(adapter) / "final"
        adapter = final if final.is_dir() else adapter
        if weights != "float32" and trains_every_base_weight(loaded.model, adapter):
            loaded = load_model(model, dtype="float32", device=device)
        load_adapter(loaded.model, adapter)
    loaded.model.eval()
    return loaded
