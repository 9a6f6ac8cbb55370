"""Automatic prefix caching: the keys and values of a prompt prefix that requests share (the
system prompt and tool prelude every tool request repeats) are computed once and reused, as
vLLM's automatic prefix caching does.

Why the reuse is exact: a decoder's keys and values at position i depend only on tokens 0..i
(causal attention), and citi's adapters keep that property. LoRA is a fixed delta per weight;
MOLoRA's router weighs its experts per token from that token's own hidden state,
``G(x) = softmax(R x)`` (citi.molora.layer), with no pooling over the sequence. So a prefix's
KV does not depend on what follows it, and a cached one equals the one a full prefill computes
(tests/serve/test_prefix_cache.py checks greedy outputs with and without, LoRA and MOLoRA).

Why it matters: with tools, the prelude is most of every prompt (266 of SmolLM2's prompt tokens
against 38 without tools), and prefill is compute-bound on a CPU: a batch of 16 pays it 16
times, so batching helped decode only. With the cache it is paid once per distinct prefix.

Layout: the rows of a batch share the prefix at positions 0..P-1, and each row's own tokens
follow after its padding, ``[prefix | pad... | rest]``. The attention mask hides the pads, and
transformers' ``generate`` derives position ids from the mask's running sum, so each row's own
tokens continue at position P, as in its unpadded prompt.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer
from transformers.modeling_outputs import CausalLMOutputWithPast

from citi.errors import CitiError

# transformers 5 renamed the ``past_key_values`` argument ``cache``; take whichever it has.
CACHE_ARG = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"

KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values [1, heads, tokens, dim]


def common_length(a, b) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def shared_prefix(rows: list[list[int]]) -> int:
    """The longest prefix every row starts with, leaving each row at least one token of its own
    (``generate`` needs one uncached token per row to compute the next token's logits)."""
    n = min(len(r) for r in rows) - 1
    for row in rows[1:]:
        n = min(n, common_length(rows[0], row))
    return max(n, 0)


class PrefixCache:
    """Recently used prefixes' KV, least recently used dropped first, at most ``max_tokens``
    tokens in all (the memory stays bounded however many distinct prompts come)."""

    def __init__(self, model, max_tokens: int = 4096, min_tokens: int = 16):
        self.model, self.max_tokens, self.min_tokens = model, max_tokens, min_tokens
        self._entries: OrderedDict[tuple[int, ...], KV] = OrderedDict()
        self.hits = self.computed = 0  # prefix tokens reused / computed (for /health)
        self.enabled = max_tokens > 0 and _plain_layers(model)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def tokens(self) -> int:
        return sum(len(key) for key in self._entries)

    def kv(self, ids: list[int]) -> KV:
        """The KV of ``ids`` (batch 1): from the entry sharing most of it, computing the rest."""
        best, n = None, 0
        for key in self._entries:
            k = common_length(key, ids)
            if k > n:
                best, n = key, k
        past = None
        if best is not None:
            self._entries.move_to_end(best)
            past = [(k[:, :, :n], v[:, :, :n]) for k, v in self._entries[best]]
            if n == len(ids):
                self.hits += n
                return past
        cache = _dynamic_cache(self.model, past)
        with torch.inference_mode():
            self.model(
                input_ids=torch.tensor([ids[n:]], device=_device(self.model)),
                use_cache=True,
                logits_to_keep=1,  # the prefix's logits are not needed, only its KV
                **{CACHE_ARG: cache},
            )
        kv = []
        for layer in cache.layers:  # full-attention layers hold the key and value tensors
            keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
            if not isinstance(keys, torch.Tensor) or not isinstance(values, torch.Tensor):
                raise CitiError(f"prefix cache: {type(layer).__name__} holds no key/value tensors")
            kv.append((keys, values))
        self.hits, self.computed = self.hits + n, self.computed + len(ids) - n
        if len(ids) <= self.max_tokens:
            self._entries[tuple(ids)] = kv
            while self.tokens > self.max_tokens:
                self._entries.popitem(last=False)
        return kv

    def batch(self, kv: KV, rows: int) -> DynamicCache:
        """A fresh cache holding ``kv`` for each of ``rows`` rows (``generate`` extends it in
        place, so the stored entry is never touched)."""
        return _dynamic_cache(
            self.model, [(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v in kv]
        )


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _config(model):
    return getattr(model, "config", None)


def _dynamic_cache(model, kv: KV | None) -> DynamicCache:
    # DynamicLayer.update concatenates, so the given tensors (views of an entry) are copied.
    return DynamicCache(kv, config=_config(model)) if kv else DynamicCache(config=_config(model))


def _plain_layers(model) -> bool:
    """Only full-attention layers: a sliding-window layer drops old KV, so a prefix cut from it
    would not be the prefix's."""
    try:
        cache = DynamicCache(config=_config(model))
    except Exception:  # a config transformers' cache cannot read: do not cache
        return False
    return all(type(layer) is DynamicLayer for layer in cache.layers)
