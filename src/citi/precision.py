"""Compute precision: one setting (``--precision fp32|bf16|auto``) for training, importance,
evaluation and benchmarks.

- training and importance keep float32 weights (the master copy, and the optimizer state) and run
  their matmuls in bfloat16 under ``torch.autocast``; importance still accumulates in float64;
- evaluation loads the weights themselves in bfloat16 (generation is bound by reading weights,
  and autocast would re-cast every weight at every decoding step).

``auto`` means bf16 wherever the hardware runs it fast: a CUDA device with bf16 support, or a CPU
with AVX-512 BF16 or AMX (there a bf16 matmul runs several times a float32 one; on CPUs without
them bf16 is emulated and slower than float32). The resolved choice, never ``auto``, is what runs
record in their config.yaml and results.json.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

from citi.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

PRECISIONS = ("auto", "fp32", "bf16")
PRECISION_HELP = (
    "compute precision (auto: bf16 where the hardware runs it fast, CPUs with AVX-512 BF16 or "
    "AMX included; training keeps float32 master weights)"
)
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True when /proc/cpuinfo lists a native bf16 matmul instruction set."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return any(flag in line.split() for flag in _CPU_BF16_FLAGS)
    except OSError:
        pass
    return False


def fast_bf16(device: str | torch.device) -> bool:
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if kind == "cpu":
        return cpu_has_fast_bf16()
    return False


def check_precision(precision: str, option: str = "--precision") -> str:
    if precision not in PRECISIONS:
        raise ConfigError(
            f"{option}: unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}"
        )
    return precision


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """``fp32`` or ``bf16`` for ``device``; ``auto`` picks bf16 where it is fast."""
    check_precision(precision)
    if precision == "auto":
        return "bf16" if fast_bf16(device) else "fp32"
    return precision


def autocast(precision: str, device: str | torch.device):
    """A bf16 autocast region for a resolved ``bf16``, else a no-op context."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def weights_dtype(dtype: str | None, precision: str) -> str:
    """The weight dtype of an inference-only model: an explicit ``--dtype`` wins; otherwise the
    resolved compute precision (bfloat16 weights for bf16, float32 for fp32)."""
    if dtype is not None and dtype != "auto":
        return dtype
    return "bfloat16" if precision == "bf16" else "float32"


@contextlib.contextmanager
def training_attention(
    model, precision: str, device: str | torch.device, backward: bool = True
) -> Iterator[str | None]:
    """Within the block, the attention kernel that trains faster: on a CPU in bf16, eager
    attention for passes with a backward through the model, SDPA for forward-only ones (stage
    RP); the model's own kernel is restored on exit, so evaluation and saved models see it.

    CPU SDPA's backward runs slower in bf16 than in fp32, while eager attention's matmuls get the
    bf16 speed-up: a SmolLM2 MOLoRA step (4x256 tokens) ran 1.22x faster with eager attention
    under bf16 autocast; a forward-only RP step ran 1.10x faster with SDPA
    (``benchmarks/train_step.py`` measures both). The two compute the same function, to rounding.
    Elsewhere the model keeps its kernel. Yields the kernel set, or None when left as it was."""
    setter = getattr(model, "set_attn_implementation", None)
    own = getattr(getattr(model, "config", None), "_attn_implementation", None)
    kernel = "eager" if backward else "sdpa"
    if precision != "bf16" or torch.device(device).type != "cpu" or setter is None or own == kernel:
        yield None
        return
    try:
        setter(kernel)
    except (ValueError, ImportError):  # a model without that kernel keeps its own
        yield None
        return
    try:
        yield kernel
    finally:
        setter(own)


@torch.no_grad()
def store_frozen_in_bf16(model: PreTrainedModel, trained) -> dict:
    """Cast, in place, the weight and bias of every ``nn.Linear`` that no stage trains
    (``trained(name)`` is False) from float32 to bfloat16; returns {"tensors", "saved_bytes"}.

    Exact under bf16 autocast: autocast casts a float32 weight to bf16 at every use, so storing
    it in bf16 gives the matmuls the very same operands, without the per-step cast and with half
    the memory. Only linear layers: the input embedding (and an LM head tied to it) and the norms
    keep float32, which autocast would not have cast (they set the residual stream's dtype). The
    model must then run under autocast; evaluation reloads the saved run instead."""
    tied = {id(p) for p in model.get_input_embeddings().parameters()}
    tensors = saved = 0
    for prefix, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        for pname, p in module.named_parameters(recurse=False):
            name = f"{prefix}.{pname}" if prefix else pname
            if p.dtype != torch.float32 or id(p) in tied or trained(name):
                continue
            p.data = p.data.to(torch.bfloat16)
            tensors += 1
            saved += p.numel() * 2
    return {"tensors": tensors, "saved_bytes": saved}


def model_precision(model: torch.nn.Module) -> str:
    """``bf16`` when any weight of ``model`` is stored in bfloat16, else ``fp32``."""
    return "bf16" if any(p.dtype == torch.bfloat16 for p in model.parameters()) else "fp32"


def run_in_float32(module: torch.nn.Module, fallback: torch.dtype) -> None:
    """Make ``module`` (whose own weights are float32 inside a bf16 model) compute in float32:
    its floating inputs are cast up on the way in and its output back to the inputs' dtype (to
    ``fallback`` when it had none, e.g. an embedding's token ids) on the way out, so the rest of
    the model runs in its own dtype. PEFT treats its float32 LoRA weights on a bf16 model alike."""
    if getattr(module, "_citi_float32", False):
        return
    module._citi_float32 = True  # type: ignore[assignment]  # a marker; Module types attrs as Tensor

    def cast_in(mod, args, kwargs):
        floats = [a for a in args if torch.is_tensor(a) and a.is_floating_point()]
        mod._citi_out_dtype = floats[0].dtype if floats else fallback

        def up(v):
            if torch.is_tensor(v) and v.is_floating_point() and v.dtype != torch.float32:
                return v.float()
            return v

        return tuple(up(a) for a in args), {k: up(v) for k, v in kwargs.items()}

    def cast_out(mod, args, kwargs, output):
        if torch.is_tensor(output) and output.is_floating_point():
            return output.to(mod._citi_out_dtype)
        return output

    module.register_forward_pre_hook(cast_in, with_kwargs=True)
    module.register_forward_hook(cast_out, with_kwargs=True)
