"""How much a model learned, or moved, on tool references: measures that do not saturate on the
call format.

``retention-tool-args``: the mean NLL of the *argument values* of the gold API-Bank calls
(``history October 6th`` in ``API-Request: [ToolSearcher(keywords='history October 6th')]``),
teacher-forced after the gold prompt. The whole-answer NLL (``retention-tool``) falls mostly on
the format tokens (``API-Request: [``, the name, ``=``, quotes), which a model learns within a
few dozen steps; the values need the prompt's content, so their NLL keeps moving. A token counts
as an argument token when its characters overlap a value's (found by citi.evaluation.apicall's
parser, quotes excluded); every other token of the answer is context only.

``kl-tool``: the mean per-token KL(base ‖ tuned) over the gold answers of the same tool prompts,
teacher-forced: how far tuning moved the next-token distributions where it was meant to (the
counterpart of the ``drift-*`` tasks, which measure it where it was not). 0 for the base model.
"""

from __future__ import annotations

import torch

from citi.data.example import Example
from citi.data.labels import IGNORE_INDEX, Encoded
from citi.data.render import encode, target_text
from citi.errors import CitiError
from citi.evaluation.apicall import parse_calls
from citi.evaluation.generation import context_length
from citi.evaluation.task import Task, TaskContext, TaskResult


def argument_char_spans(answer: str) -> list[tuple[int, int]]:
    """The character spans of the argument values of the first call in ``answer``."""
    calls = parse_calls(answer, limit=1)
    return list(calls[0].value_spans) if calls else []


def argument_mask(tokenizer, target: str, n_tokens: int, spans) -> list[bool]:
    """For the first ``n_tokens`` tokens of ``target``: does the token overlap a value span?"""
    if not getattr(tokenizer, "is_fast", False):
        raise CitiError("retention-tool-args: needs a fast tokenizer (character offsets)")
    offsets = tokenizer(target, add_special_tokens=False, return_offsets_mapping=True)[
        "offset_mapping"
    ][:n_tokens]
    return [any(s < b and a < e for a, b in spans) for s, e in offsets]


def encode_arguments(tokenizer, example: Example, max_length: int) -> Encoded | None:
    """The example encoded for training (:func:`citi.data.render.encode`), with labels kept
    only on argument-value tokens; None when its answer has no call with arguments or none of
    their tokens survives truncation."""
    spans = argument_char_spans(example.reference or "")
    enc = encode(tokenizer, example, max_length) if spans else None
    if enc is None:
        return None
    first = next(i for i, label in enumerate(enc.labels) if label != IGNORE_INDEX)
    target = target_text(tokenizer, example)
    mask = argument_mask(tokenizer, target, len(enc.labels) - first, spans)
    labels = [IGNORE_INDEX] * first + [
        label if keep else IGNORE_INDEX
        for label, keep in zip(enc.labels[first:], mask, strict=True)
    ]
    if all(label == IGNORE_INDEX for label in labels):
        return None
    return Encoded(input_ids=enc.input_ids, labels=labels, task_type=enc.task_type)


@torch.no_grad()
def per_example_nll(model, encoded: list[Encoded], pad_id: int, batch_size: int, device):
    """Each example's mean cross-entropy over its labelled tokens, and the token counts."""
    from citi.data.render import PaddingCollator
    from citi.loss import label_token_ce

    collate = PaddingCollator(pad_id)
    nll, counts = [], []
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(encoded), batch_size):
            batch = {k: v.to(device) for k, v in collate(encoded[i : i + batch_size]).items()}
            token_loss, rows, mask = label_token_ce(model, batch)
            n = mask.shape[0]
            sums = torch.zeros(n, dtype=torch.float64, device=token_loss.device)
            sums.index_add_(0, rows, token_loss.double())
            count = mask.sum(1)
            nll += (sums / count.clamp(min=1)).tolist()
            counts += count.tolist()
    finally:
        model.train(was_training)
    return nll, counts


def argument_nll(task: Task, examples: list[Example], ctx: TaskContext) -> TaskResult:
    tok = ctx.loaded.tokenizer
    length = min(ctx.max_length, context_length(ctx.loaded.model, tok) or ctx.max_length)
    kept = [(ex, e) for ex in examples if (e := encode_arguments(tok, ex, length)) is not None]
    encoded = [e for _, e in kept]
    nll, counts = per_example_nll(
        ctx.loaded.model, encoded, tok.pad_token_id, ctx.batch_size, ctx.loaded.device
    )
    records = [
        {"reference": ex.reference, "scores": {"arg_nll": v, "arg_tokens": c}}
        for (ex, _), v, c in zip(kept, nll, counts, strict=True)
    ]
    tokens = sum(counts)
    # Per token over all examples (as retention-tool), so long values weigh by their length.
    mean = sum(v * c for v, c in zip(nll, counts, strict=True)) / max(tokens, 1)
    metrics = {"arg_nll": mean, "examples": len(records), "argument_tokens": tokens}
    return TaskResult(metrics, records, "arg_nll")


def tool_kl(task: Task, examples: list[Example], ctx: TaskContext) -> TaskResult:
    from citi.data.render import render_prompt
    from citi.evaluation.benchmarks.drift import _base_model_like, per_example_kl

    loaded, tok = ctx.loaded, ctx.loaded.tokenizer
    answered = [ex for ex in examples if ex.target is not None]
    prompts = [render_prompt(tok, ex.prompt_messages) for ex in answered]
    answers = [target_text(tok, ex) for ex in answered]
    base = _base_model_like(loaded)
    kls = per_example_kl(base, loaded.model, tok, prompts, answers, ctx.batch_size)
    del base
    records: list[dict] = [
        {"reference": ex.reference, "scores": {"kl": k}}
        for ex, k in zip(answered, kls, strict=True)
        if k is not None
    ]
    values = [r["scores"]["kl"] for r in records]
    return TaskResult({"kl": sum(values) / max(len(values), 1)}, records, "kl")


# Held-out API-Bank level-2 calls, the same examples as retention-tool.
TASKS = [
    Task(
        name="retention-tool-args",
        dataset="apibank-l2",
        description="mean NLL of the argument-value tokens of the apibank-l2 reference calls "
        "(lower is better; format tokens are context only)",
        run=argument_nll,
        primary="arg_nll",
    ),
    Task(
        name="kl-tool",
        dataset="apibank-l2",
        description="mean per-token KL(base || tuned) over the apibank-l2 reference answers "
        "(how far tuning moved the model on tool prompts; 0 = unchanged)",
        run=tool_kl,
        primary="kl",
    ),
]
