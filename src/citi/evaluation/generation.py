"""Batched greedy generation: left padding, the KV cache, per-task length limits and stop strings.

Prompts are sorted by length so that each batch holds similar lengths (less padding), and the
outputs are returned in the caller's order. Greedy decoding makes the outputs deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm
from transformers import StoppingCriteria, StoppingCriteriaList


class StopOnStrings(StoppingCriteria):
    """Stops when every sequence of the batch contains one of ``stops`` in its new text."""

    def __init__(self, tokenizer, stops: Sequence[str], prompt_length: int):
        self.tokenizer = tokenizer
        self.stops = list(stops)
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.BoolTensor:
        new = self.tokenizer.batch_decode(input_ids[:, self.prompt_length :])
        done = [any(s in text for s in self.stops) for text in new]
        return torch.tensor(done, device=input_ids.device)


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
) -> list[str]:
    """Greedy continuations of already-rendered ``prompts`` (special tokens are not added again)."""
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outputs: list[str | None] = [None] * len(prompts)
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
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
            ).to(device)
            width = enc["input_ids"].shape[1]
            criteria = (
                StoppingCriteriaList([StopOnStrings(tokenizer, stop, width)]) if stop else None
            )
            out = model.generate(
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
            )
            texts = tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
            for i, text in zip(idx, texts, strict=True):
                outputs[i] = truncate_at_stop(text, stop)
    finally:
        tokenizer.padding_side = old_side
        model.train(was_training)
    return [o or "" for o in outputs]
