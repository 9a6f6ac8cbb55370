"""Tiny, randomly initialised models and a byte-level tokenizer built in-process.

Tests and quick experiments use these instead of real weights: they build in milliseconds, need
no files, and are seeded so that two builds are bit-identical.
"""

from __future__ import annotations

from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    AutoModelForCausalLM,
    LlamaConfig,
    Phi3Config,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

# ChatML, the same turn format as SmolLM2, so prompt rendering is exercised the same way.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with no merges: 3 special tokens + 256 byte symbols."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in sorted(alphabet):
        vocab[ch] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(SPECIAL_TOKENS)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    tok.chat_template = CHATML_TEMPLATE
    return tok


def _tiny_config(kind: str, vocab_size: int, num_layers: int):
    common: dict[str, Any] = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    if kind == "llama":
        return LlamaConfig(num_key_value_heads=2, **common)
    if kind == "phi3":
        return Phi3Config(num_key_value_heads=4, **common)
    raise ValueError(f"unknown tiny model kind {kind!r}")


def build_tiny_model(
    kind: str, num_layers: int = 2, seed: int = 0, vocab_size: int | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """A seeded random model of the given architecture (``llama`` or ``phi3``) and its tokenizer."""
    tok = byte_tokenizer()
    config = _tiny_config(kind, vocab_size or len(tok), num_layers)
    # fork_rng keeps the caller's global RNG untouched, so building a model has no side effects.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    model.eval()
    return model, tok
