"""Turning examples into token ids with the model's chat template, and batching them.

Only the supervised assistant turn is labelled (its text and the template's end-of-turn token);
everything else is -100. Prompt and target are tokenised separately without special tokens added
by the tokenizer, so no second BOS sneaks in (a known defect of the authors' test prompts).
A user's conversation (``example.supervise`` set) is encoded by :mod:`citi.data.labels` instead:
every assistant turn, tools and calls rendered by citi's chat template.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from citi.data.example import Example
from citi.data.labels import IGNORE_INDEX, Encoded, EncodeStats, encode_conversation
from citi.errors import DataError

__all__ = ["IGNORE_INDEX", "EncodeStats", "Encoded", "PaddingCollator", "encode", "encode_all"]


def _fallback_template(messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    text = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in messages)
    return text + ("Assistant: " if add_generation_prompt else "")


def render_prompt(tokenizer, messages: list[dict[str, str]]) -> str:
    """The text the model sees before it answers: the chat template with a generation prompt."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return _fallback_template(messages, True)


def _render_full(tokenizer, messages: list[dict[str, str]]) -> str:
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False)
    return _fallback_template(messages, False)


def target_text(tokenizer, example: Example) -> str:
    """The assistant turn as the template writes it, up to and including its end-of-turn token."""
    content = example.reference
    if example.target is None or content is None:
        raise DataError(f"{example.source}: a prompt-only example has no turn to supervise")
    prompt = render_prompt(tokenizer, example.prompt_messages)
    full = _render_full(tokenizer, list(example.messages[: example.target + 1]))
    if full.startswith(prompt) and full[len(prompt) :].startswith(content):
        rest = full[len(prompt) + len(content) :]
        # Keep the end-of-turn marker (e.g. "<|im_end|>") so the model learns to stop, but not the
        # newline the template puts between turns.
        return content + rest.rstrip()
    eos = tokenizer.eos_token or ""
    return content + eos


def encode(
    tokenizer,
    example: Example,
    max_length: int,
    template: str | None = None,
    stats: EncodeStats | None = None,
) -> Encoded | None:
    """Token ids and labels for a supervised example; ``None`` if nothing supervised survives.

    Over-long examples keep the end of the prompt (where the question is) and as much of the
    target as fits, with at least half of ``max_length`` reserved for the prompt. Conversations
    (``example.supervise`` set) follow :func:`citi.data.labels.encode_conversation`, rendered
    with ``template`` (default: :func:`citi.data.chat_template.chat_template_for`).
    """
    if example.supervise is not None:
        return encode_conversation(tokenizer, example, max_length, template, stats)
    if example.target is None:
        raise ValueError(f"example from {example.source} has no supervised turn")
    prompt_ids = tokenizer(
        render_prompt(tokenizer, example.prompt_messages), add_special_tokens=False
    )["input_ids"]
    target_ids = tokenizer(target_text(tokenizer, example), add_special_tokens=False)["input_ids"]
    if len(prompt_ids) + len(target_ids) > max_length:
        keep_target = min(len(target_ids), max(max_length - len(prompt_ids), max_length // 2))
        target_ids = target_ids[:keep_target]
        prompt_ids = prompt_ids[len(prompt_ids) - (max_length - keep_target) :]
    if not target_ids:
        return None
    return Encoded(
        input_ids=prompt_ids + target_ids,
        labels=[IGNORE_INDEX] * len(prompt_ids) + list(target_ids),
        task_type=example.task_type,
    )


def encode_all(
    tokenizer,
    examples: Sequence[Example],
    max_length: int,
    template: str | None = None,
    stats: EncodeStats | None = None,
) -> list[Encoded]:
    """Every example that keeps a supervised token; ``stats`` counts conversations dropped."""
    out = [encode(tokenizer, ex, max_length, template, stats) for ex in examples]
    return [e for e in out if e is not None]


class PaddingCollator:
    """Right-pads a list of :class:`Encoded` into tensors: input_ids, attention_mask, labels
    (padding labelled -100) and task_type."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None):
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, batch: Sequence[Encoded]) -> dict[str, torch.Tensor]:
        width = max(len(e.input_ids) for e in batch)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            width = (width + m - 1) // m * m
        n = len(batch)
        input_ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((n, width), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((n, width), dtype=torch.long)
        for i, e in enumerate(batch):
            length = len(e.input_ids)
            input_ids[i, :length] = torch.tensor(e.input_ids)
            labels[i, :length] = torch.tensor(e.labels)
            attention_mask[i, :length] = 1
        return {
            "input_ids": input_ids,  # [batch, seq]
            "attention_mask": attention_mask,  # [batch, seq]
            "labels": labels,  # [batch, seq]
            "task_type": torch.tensor([e.task_type for e in batch]),  # [batch]
        }
