"""Model loading: aliases, GGUF conversion cache, tiny in-process models."""

from citi.models.loader import (
    ALIASES,
    DEFAULT_MODEL,
    LoadedModel,
    cache_dir,
    convert_gguf,
    load_model,
    resolve_dtype,
)
from citi.models.tiny import build_tiny_model, byte_tokenizer

__all__ = [
    "ALIASES",
    "DEFAULT_MODEL",
    "LoadedModel",
    "build_tiny_model",
    "byte_tokenizer",
    "cache_dir",
    "convert_gguf",
    "load_model",
    "resolve_dtype",
]
