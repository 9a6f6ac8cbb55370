"""``citi plan``: will a method fit on my GPUs? A per-device memory estimate for DDP, FSDP and
DeepSpeed ZeRO-2, from the model's config alone (the model is built on the meta device: exact
parameter counts, no weights loaded).

What is counted, per device (bytes):
- weights: float32 master weights of everything a stage trains, adapters included, and of the
  embedding and norms; the linear weights no stage trains in bf16 (citi trains under bf16
  autocast and, with ``--dtype auto``, stores those in bf16: see
  citi.precision.store_frozen_in_bf16); under FSDP every weight in float32;
- gradients: float32, trainable parameters only; optimizer: AdamW's two float32 moments;
- activations under bf16 autocast, per token and decoder layer (an estimate for a Llama block with
  fused SDPA attention, no sequence-squared term): the inputs the backward pass keeps, about
  ``2 * (6h + 2 kv + 4i) + 8h`` bytes (h hidden, kv key/value width, i MLP width: norms,
  projections, SwiGLU gates in bf16, the float32 residual stream); with gradient checkpointing,
  the float32 layer inputs (``4h``) for every layer plus one layer recomputed in full;
- logits: float32 logits and their gradient at every position (an upper bound: citi applies
  the LM head at label positions only).
Sharding: DDP keeps everything per device; ZeRO-2 shards gradients and optimizer state; FSDP
(full shard) shards weights, gradients and optimizer state, plus one gathered decoder layer.
For a multi-stage method the stage with the most trainable parameters is planned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from citi.errors import CitiError, ConfigError

GIB = 1024**3

# Published config.json values of the models this project plans for (no download needed).
KNOWN_CONFIGS: dict[str, dict[str, Any]] = {
    "smollm2-135m-instruct": dict(
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        vocab_size=49152,
        tie_word_embeddings=True,
    ),
    "llama-3-8b-instruct": dict(
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        tie_word_embeddings=False,
    ),
}


@dataclass
class ModelShape:
    total: int  # parameters of the model
    components: list[tuple[str, int, int]]  # (name, in_features, out_features) per component
    hidden: int
    kv_width: int
    intermediate: int
    layers: int
    vocab: int
    largest_layer: int  # parameters of one decoder layer
    head: int = 0  # parameters of an LM head not tied to the input embedding


def model_config(spec: str):
    """A transformers config for a known alias, a tiny alias or a local directory/hub id."""
    from transformers import AutoConfig, LlamaConfig

    if spec in KNOWN_CONFIGS:
        return LlamaConfig(**KNOWN_CONFIGS[spec])
    from citi.models.loader import TINY_ALIASES

    if spec in TINY_ALIASES:
        from citi.models.tiny import _tiny_config, byte_tokenizer

        kind, layers = TINY_ALIASES[spec]
        return _tiny_config(kind, len(byte_tokenizer()), layers)
    try:
        return AutoConfig.from_pretrained(spec, local_files_only=True)
    except (OSError, ValueError):
        known = ", ".join([*KNOWN_CONFIGS, *TINY_ALIASES])
        raise ConfigError(
            f"--model: no config for {spec!r} (known: {known}, or a directory with config.json)"
        ) from None


# The config.json fields the estimate reads; each must be a whole number >= 1.
SIZE_FIELDS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "vocab_size",
)


def model_shape(config, source: str = "--model") -> ModelShape:
    """Exact parameter counts from a model built on the meta device. ``source`` names the
    model in error messages."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    from citi.components import find_decoder_layers, list_components

    def check_fields(missing_too: bool) -> None:
        for name in SIZE_FIELDS:
            value = getattr(config, name, None)
            if value is None and not missing_too:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"{source}: config.json field {name} must be a whole number >= 1, got {value!r}"
                )

    check_fields(missing_too=False)  # before building: a negative size crashes torch
    kind = getattr(config, "model_type", None) or type(config).__name__
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # transformers' advice for encoders is no use here
    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
        find_decoder_layers(model)
    except (ValueError, CitiError):
        raise ConfigError(
            f"{source}: a {kind} config is not a decoder-only causal language model "
            "(plan estimates those: Llama, Qwen, Phi-3, ...)"
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    check_fields(missing_too=True)
    comps = list_components(model)
    _, layers = find_decoder_layers(model)
    head, embedding = model.get_output_embeddings(), model.get_input_embeddings().weight
    hidden = config.hidden_size
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    return ModelShape(
        total=sum(p.numel() for p in model.parameters()),
        components=[(c.name, c.in_features, c.out_features) for c in comps],
        hidden=hidden,
        kv_width=hidden // heads * kv_heads,
        intermediate=config.intermediate_size,
        layers=len(layers),
        vocab=config.vocab_size,
        largest_layer=max(sum(p.numel() for p in layer.parameters()) for layer in layers),
        head=0 if head is None or head.weight is embedding else head.weight.numel(),
    )


def _by_size(shape: ModelShape) -> list[tuple[str, int, int]]:
    return sorted(shape.components, key=lambda c: -c[1] * c[2])


def _citi_sets(shape: ModelShape, selection: dict | None):
    """(MOLoRA, UCO) components as (name, in, out); without a selection, the largest ones."""
    sizes = {name: (i, o) for name, i, o in shape.components}
    if selection:
        unknown = [c for c in [*selection["molora"], *selection["uco"]] if c not in sizes]
        if unknown:
            raise ConfigError(f"--selection: unknown component {unknown[0]!r} for this model")
        return (
            [(c, *sizes[c]) for c in selection["molora"]],
            [(c, *sizes[c]) for c in selection["uco"]],
        )
    n, ranked = len(shape.components), _by_size(shape)
    return ranked[: round(0.2 * n)], ranked[round(0.2 * n) : round(0.2 * n) + round(0.1 * n)]


def frozen_linear_parameters(shape: ModelShape, method: str, selection: dict | None = None) -> int:
    """Linear-layer weights no stage of ``method`` trains (stored in bf16 by a bf16 run)."""
    if method == "ft":
        return 0
    linear = sum(i * o for _, i, o in shape.components) + shape.head
    if method == "citi":
        return linear - sum(i * o for _, i, o in _citi_sets(shape, selection)[1])
    return linear


def trainable_parameters(
    shape: ModelShape,
    method: str,
    selection: dict | None = None,
    molora: dict | None = None,
    lora_rank: int = 16,
) -> tuple[int, int]:
    """(adapter parameters added to the model, trainable parameters of the largest stage).
    Without a selection, CITI's sets are the largest components (an upper bound)."""
    molora = {"num_experts": 4, "rank": 8, "null_expert": True, **(molora or {})}
    if method == "ft":
        return 0, shape.total
    if method in ("lora", "lora-dm"):
        added = sum(lora_rank * (i + o) for _, i, o in shape.components)
        return added, added
    if method != "citi":
        raise ConfigError(f"--method: plan knows ft, lora, lora-dm and citi, not {method!r}")
    mol, uco = _citi_sets(shape, selection)
    e, r = molora["num_experts"], molora["rank"]
    routers = sum((e + int(molora["null_expert"])) * i for _, i, _ in mol)
    experts = sum(e * r * (i + o) for _, i, o in mol)
    uco_weights = sum(i * o for _, i, o in uco)
    return routers + experts, max(routers + experts, uco_weights)


def activation_bytes(shape: ModelShape, tokens: int, checkpointing: bool) -> tuple[int, int]:
    """(decoder activations, logits) bytes for ``tokens`` tokens per device."""
    h, kv, i = shape.hidden, shape.kv_width, shape.intermediate
    per_layer = 2 * (6 * h + 2 * kv + 4 * i) + 8 * h  # bytes per token
    if checkpointing:
        layers = tokens * (4 * h * shape.layers + per_layer)
    else:
        layers = tokens * per_layer * shape.layers
    return layers, 8 * shape.vocab * tokens


def check_sizes(**sizes) -> None:
    """Each size given (max_length, batch_size, tokens, devices: whole numbers >= 1;
    device_gib: a finite number > 0), or one error line naming its option."""
    options = {
        "max_length": "--max-length",
        "batch_size": "--batch-size",
        "tokens": "--batch-size x --max-length",
        "devices": "--devices",
        "device_gib": "--device-memory",
    }
    for key, value in sizes.items():
        option = options[key]
        if key == "device_gib":
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or value <= 0:
                raise ConfigError(
                    f"{option}: GiB per device must be a finite number > 0, got {value!r}"
                )
        elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{option}: must be a whole number >= 1, got {value!r}")


def plan(
    shape: ModelShape,
    method: str,
    tokens: int,
    devices: int,
    device_gib: float,
    selection: dict | None = None,
    molora: dict | None = None,
) -> dict:
    """Per-device bytes of each part, for each strategy, with and without checkpointing."""
    check_sizes(tokens=tokens, devices=devices, device_gib=device_gib)
    added, trainable = trainable_parameters(shape, method, selection, molora)
    frozen = frozen_linear_parameters(shape, method, selection)
    weights = 4 * (shape.total + added - frozen) + 2 * frozen
    grads, optim = 4 * trainable, 8 * trainable
    gathered = 4 * shape.largest_layer  # FSDP: one decoder layer unsharded at a time
    strategies = {
        "ddp": (weights, grads, optim),
        "zero2": (weights, grads / devices, optim / devices),
        "fsdp": (4 * (shape.total + added) / devices + gathered, grads / devices, optim / devices),
    }
    per_strategy: dict[str, dict] = {}
    out = {
        "trainable": trainable,
        "total_parameters": shape.total + added,
        "strategies": per_strategy,
    }
    for ckpt in (False, True):
        acts, logits = activation_bytes(shape, tokens, ckpt)
        for name, (w, g, o) in strategies.items():
            total = w + g + o + acts + logits
            per_strategy.setdefault(name, {})["checkpointing" if ckpt else "plain"] = {
                "weights": w,
                "gradients": g,
                "optimizer": o,
                "activations": acts,
                "logits": logits,
                "total": total,
                "fits": total <= device_gib * GIB,
            }
    return out
