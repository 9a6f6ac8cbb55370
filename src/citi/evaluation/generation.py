"""Batched greedy generation: left padding, the KV cache, per-task length limits and stop strings.

Prompts are sorted by length so that each batch holds similar lengths (less padding), and the
outputs are returned in the caller's order. Greedy decoding makes the outputs deterministic.
Answers that finished leave their batch every few tokens, so that a batch is not computed for its
longest answer's full length on every row.

A prompt longer than the model's context minus ``max_new_tokens`` is cut from the left to fit,
keeping its end (the question and the generation prompt), as lm-eval does for generation tasks;
the cut prompts are counted (:func:`count_truncated`) and announced in one line. Without the cut
a 1 MB prompt sat in prefill for minutes and the model read positions it was never trained on.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import cast

import torch
import transformers
from tqdm.auto import tqdm
from transformers import StoppingCriteria, StoppingCriteriaList

from citi.console import console
from citi.errors import CitiError

# Tokenizers that do not know their limit report this much or more (transformers' 1e30).
_UNKNOWN_LENGTH = 10**8
# transformers 5 renamed `generate`'s past_key_values (argument and output) to cache; the old
# name still works there but warns.
_CACHE = "cache" if int(transformers.__version__.split(".")[0]) >= 5 else "past_key_values"
# New tokens per `generate` call between drops of finished answers: 1.17x tokens/s over one call
# per batch, identical answers (benchmarks/eval_generation.py, docs/guides/performance.md).
PRUNE_EVERY = 8
_truncated: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "citi_truncated", default=None
)


@contextlib.contextmanager
def count_truncated() -> Iterator[list[int]]:
    """Within the block, ``counter[0]`` counts the prompts :func:`generate` cut to fit."""
    counter = [0]
    token = _truncated.set(counter)
    try:
        yield counter
    finally:
        _truncated.reset(token)


def context_length(model, tokenizer) -> int | None:
    """The longest sequence ``model`` takes: the smaller of its config's
    max_position_embeddings and the tokenizer's model_max_length; None when neither says."""
    sizes = [
        getattr(getattr(model, "config", None), "max_position_embeddings", None),
        getattr(tokenizer, "model_max_length", None),
    ]
    known = [n for n in sizes if isinstance(n, int) and 0 < n < _UNKNOWN_LENGTH]
    return min(known) if known else None


def prompt_budget(model, tokenizer, max_new_tokens: int) -> int | None:
    """Prompt tokens that fit beside ``max_new_tokens`` new ones; None when the context is
    unknown. A task whose new tokens alone fill the context is one error line."""
    context = context_length(model, tokenizer)
    if context is None:
        return None
    if max_new_tokens >= context:
        raise CitiError(
            f"max_new_tokens {max_new_tokens} leaves no room for a prompt in the model's "
            f"context of {context} tokens"
        )
    return context - max_new_tokens


class StopOnStrings(StoppingCriteria):
    """Stops when every sequence of the batch contains one of ``stops`` in its new text."""

    def __init__(self, tokenizer, stops: Sequence[str], prompt_length: int):
        self.tokenizer = tokenizer
        self.stops = list(stops)
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.BoolTensor:
        new = self.tokenizer.batch_decode(input_ids[:, self.prompt_length :])
        done = [any(s in text for s in self.stops) for text in new]
        # transformers annotates the result as BoolTensor, a type torch.tensor() never names.
        return cast(torch.BoolTensor, torch.tensor(done, dtype=torch.bool, device=input_ids.device))


def truncate_at_stop(text: str, stops: Sequence[str]) -> str:
    """Cut ``text`` at the earliest stop string."""
    cut = len(text)
    for s in stops:
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int,
    stop: Sequence[str] = (),
    batch_size: int = 8,
    progress: bool | str = False,
    prune_every: int | None = PRUNE_EVERY,
) -> list[str]:
    """Greedy continuations of already-rendered ``prompts`` (special tokens are not added again).

    Every ``prune_every`` new tokens the answers that finished leave the batch
    (:func:`_generate_pruning`); None keeps each batch in one `generate` call to the end."""
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outputs: list[str | None] = [None] * len(prompts)
    budget = prompt_budget(model, tokenizer, max_new_tokens)
    _announce_truncation(tokenizer, prompts, budget, max_new_tokens)
    old_side, old_cut = tokenizer.padding_side, tokenizer.truncation_side
    tokenizer.padding_side = tokenizer.truncation_side = "left"
    was_training = model.training
    model.eval()
    try:
        desc = progress if isinstance(progress, str) else "generate"
        for start in tqdm(
            range(0, len(order), batch_size), desc=desc, disable=not progress, leave=False
        ):
            idx = order[start : start + batch_size]
            enc = tokenizer(
                [prompts[i] for i in idx],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
                truncation=budget is not None,
                max_length=budget,
            ).to(device)
            width = enc["input_ids"].shape[1]
            criteria = (
                StoppingCriteriaList([StopOnStrings(tokenizer, stop, width)]) if stop else None
            )
            if prune_every and len(idx) > 1:
                new = _generate_pruning(
                    model, tokenizer, enc, max_new_tokens, criteria, prune_every
                )
            else:
                new = _greedy(model, tokenizer, enc, max_new_tokens, criteria)[:, width:]
            texts = tokenizer.batch_decode(new, skip_special_tokens=True)
            for i, text in zip(idx, texts, strict=True):
                outputs[i] = truncate_at_stop(text, stop)
    finally:
        tokenizer.padding_side, tokenizer.truncation_side = old_side, old_cut
        model.train(was_training)
    return [o or "" for o in outputs]


def _greedy(model, tokenizer, enc, max_new_tokens: int, criteria, **kw):
    """One greedy `generate` call on the tokenised batch ``enc``."""
    return model.generate(
        **enc,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        pad_token_id=tokenizer.pad_token_id,
        stopping_criteria=criteria,
        use_cache=True,
        temperature=None,
        top_p=None,
        top_k=None,
        **kw,
    )


def _generate_pruning(model, tokenizer, enc, max_new_tokens: int, criteria, every: int):
    """Greedy new tokens of the batch ``enc``, ``every`` tokens per `generate` call, dropping the
    rows that finished (end of sequence or a stop string) between calls, with their rows of the
    KV cache: one `generate` call keeps computing every row until the last one finishes, so a
    batch of short and long answers spends most of its steps on rows already done.

    Returns the new tokens of every row, padded with the pad token, as one `generate` call would."""
    ids, mask = enc["input_ids"], enc["attention_mask"]
    rows, pad = ids.shape[0], tokenizer.pad_token_id
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    eos = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
    new = torch.full((rows, max_new_tokens), pad, dtype=ids.dtype, device=ids.device)
    live = torch.arange(rows, device=ids.device)  # the batch rows still generating
    cache, done_tokens = None, 0
    while done_tokens < max_new_tokens and len(live):
        step = min(every, max_new_tokens - done_tokens)
        out = _greedy(
            model,
            tokenizer,
            {"input_ids": ids, "attention_mask": mask},
            step,
            criteria,
            **{_CACHE: cache},
            return_dict_in_generate=True,
        )
        seq, cache = out.sequences, getattr(out, _CACHE)
        got = seq[:, ids.shape[1] :]
        new[live, done_tokens : done_tokens + got.shape[1]] = got
        done_tokens += got.shape[1]
        finished = torch.zeros(len(live), dtype=torch.bool, device=ids.device)
        for e in eos:
            finished |= (got == e).any(dim=1)
        if criteria is not None:
            # the stop strings, over each row's whole answer so far
            finished |= criteria(
                torch.cat([enc["input_ids"][live], new[live, :done_tokens]], 1), None
            )
        if got.shape[1] < step:  # generate stopped early: every row finished
            break
        keep = (~finished).nonzero().squeeze(1)
        mask = torch.cat([mask, torch.ones_like(got)], dim=1)
        if len(keep) < len(live):
            cache.batch_select_indices(keep)
            seq, mask, live = seq[keep], mask[keep], live[keep]
        ids = seq
    return new


def _announce_truncation(tokenizer, prompts, budget: int | None, max_new_tokens: int) -> None:
    """Count the prompts over ``budget`` tokens (for :func:`count_truncated`) and say so once."""
    if budget is None or not prompts:
        return
    lengths = [len(ids) for ids in tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
    cut = sum(n > budget for n in lengths)
    if not cut:
        return
    counter = _truncated.get()
    if counter is not None:
        counter[0] += cut
    console.print(
        f"[yellow]{cut} of {len(prompts)} prompts are longer than the model's context allows "
        f"({budget + max_new_tokens} tokens, {max_new_tokens} kept for the answer; the longest "
        f"has {max(lengths)}): cut from the left to their last {budget} tokens[/yellow]"
    )
