"""Forgetting measures that work at 135M and do not reward answer style.

``drift-<ability>``: the mean per-token KL(base ‖ tuned) over the *base model's own* greedy
answers to held-out general prompts. Reference-answer NLL rewards a model for learning a
dataset's answer style (FT on API-Bank lowers TriviaQA NLL because it learns to answer briefly);
drift instead asks how far the tuned model's next-token distribution moved away from the base
model's on text the base model itself produces. Zero for an unchanged model. (Forward KL to the
base model on the base's behaviour tracks forgetting: "RL's Razor", 2025; "LoRA Learns Less and
Forgets Less", 2024.) The base answers are generated once and cached by content hash under
``$CITI_CACHE/drift/``; the KL needs one forward of each model on the same tokens.

``leak-tool``: the share of general prompts on which the tuned model's greedy answer contains a
tool call, the failure mode of tool-tuned models: an API-Bank call (``[Name(key=value)]`` or
``API-Request:``), a Hermes ``<tool_call>`` block (even a broken one), or a JSON call object with
its arguments anywhere in the text (``{"name": ..., "arguments": ...}``, OpenAI's
``{"function": ...}`` shape; see :mod:`citi.evaluation.toolcalls.parse`).
"""

from __future__ import annotations

import hashlib
import json
import re

import torch
import torch.nn.functional as F

from citi.data.example import Example
from citi.data.render import render_prompt
from citi.evaluation.apicall import parse_calls
from citi.evaluation.benchmarks.gsm8k import gsm8k_prompt
from citi.evaluation.benchmarks.triviaqa import triviaqa_prompt
from citi.evaluation.generation import generate
from citi.evaluation.task import Task, TaskContext, TaskResult, chat_prompt
from citi.evaluation.toolcalls.parse import parse_tool_calls
from citi.io import read_json, write_json_atomic

DRIFT_NEW_TOKENS = 96


def token_kl(base_logits: torch.Tensor, tuned_logits: torch.Tensor) -> torch.Tensor:
    """KL(base ‖ tuned) per position: Σ_v p_b(v) (log p_b(v) − log p_t(v)).

    ``[..., vocab]`` logits in, ``[...]`` KL out (float32, natural log)."""
    log_b = F.log_softmax(base_logits.float(), dim=-1)
    log_t = F.log_softmax(tuned_logits.float(), dim=-1)
    return (log_b.exp() * (log_b - log_t)).sum(-1).clamp(min=0)


_JSON_CALL = re.compile(r'\{\s*"(?:name|function|type)"\s*:')


def contains_tool_call(text: str) -> bool:
    """True if ``text`` holds a call in a tool-calling template's format: a ``<tool_call>``
    block (parsed or not) or, anywhere in the text, a JSON call object that names its arguments
    (a JSON answer such as ``{"name": "Ada", "age": 36}`` is not a call)."""
    if "<tool_call>" in text:
        return True
    starts = [m.start() for m in _JSON_CALL.finditer(text)][:8]  # a bound on the work
    return any(parse_tool_calls(text[i:]).calls for i in starts)


def contains_api_call(text: str) -> bool:
    """True if ``text`` holds an API-Bank style call or request marker, or a call in the Hermes
    or JSON format (:func:`contains_tool_call`).

    An API-Bank call is ``[Name(key=value, ...)]`` with keyword arguments, or ``[Name()]`` with
    a capitalised name (API names are CamelCase); Python such as ``[f(x) for x in y]`` or
    ``[len(a)]`` does not parse as a call, and ``[print()]`` is not capitalised."""
    if "API-Request:" in text:
        return True
    if any(call.args or call.name[:1].isupper() for call in parse_calls(text, limit=4)):
        return True
    return contains_tool_call(text)


def _answer_positions(prompt_lens: list[int], answer_lens: list[int], width: int):
    """(rows, cols) of the positions whose next-token distribution predicts an answer token,
    in a right-padded batch of prompt+answer sequences."""
    rows, cols = [], []
    for i, (p, a) in enumerate(zip(prompt_lens, answer_lens, strict=True)):
        for t in range(p - 1, min(p + a - 1, width - 1)):
            rows.append(i)
            cols.append(t)
    return torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long)


@torch.no_grad()
def _logits_at(model, ids, mask, rows, cols) -> torch.Tensor:
    hidden = model.get_decoder()(input_ids=ids, attention_mask=mask, use_cache=False)
    h = hidden.last_hidden_state[rows, cols]  # [n_positions, hidden]
    return model.get_output_embeddings()(h)  # [n_positions, vocab]


def per_example_kl(base, tuned, tokenizer, prompts: list[str], answers: list[str], batch_size):
    """Mean KL(base ‖ tuned) per answer token, one value per example (None: empty answer)."""
    device = next(tuned.parameters()).device
    out: list[float | None] = []
    pad = tokenizer.pad_token_id
    was = (base.training, tuned.training)
    base.eval()
    tuned.eval()
    try:
        for start in range(0, len(prompts), batch_size):
            p_ids = [
                tokenizer(p, add_special_tokens=False)["input_ids"]
                for p in prompts[start : start + batch_size]
            ]
            a_ids = [
                tokenizer(a, add_special_tokens=False)["input_ids"]
                for a in answers[start : start + batch_size]
            ]
            seqs = [p + a for p, a in zip(p_ids, a_ids, strict=True)]
            width = max(len(s) for s in seqs)
            ids = torch.full((len(seqs), width), pad, dtype=torch.long)
            mask = torch.zeros((len(seqs), width), dtype=torch.long)
            for i, s in enumerate(seqs):
                ids[i, : len(s)] = torch.tensor(s)
                mask[i, : len(s)] = 1
            rows, cols = _answer_positions([len(p) for p in p_ids], [len(a) for a in a_ids], width)
            if not len(rows):
                out += [None] * len(seqs)
                continue
            ids, mask = ids.to(device), mask.to(device)
            kl = token_kl(
                _logits_at(base, ids, mask, rows.to(device), cols.to(device)),
                _logits_at(tuned, ids, mask, rows.to(device), cols.to(device)),
            ).cpu()  # [n_positions]
            for i in range(len(seqs)):
                values = kl[rows == i]
                out.append(float(values.mean()) if len(values) else None)
    finally:
        base.train(was[0])
        tuned.train(was[1])
    return out


def _base_model_like(loaded):
    """A fresh copy of the base model, in the tuned model's dtype and device."""
    from citi.models import load_model

    param = next(loaded.model.parameters())
    dtype = {torch.bfloat16: "bfloat16", torch.float16: "float16"}.get(param.dtype, "float32")
    return load_model(loaded.name, dtype=dtype, device=str(param.device)).model


def base_answers(base, tokenizer, source: str, prompts: list[str], batch_size: int) -> list[str]:
    """The base model's greedy answers, cached by content (model, dtype, prompts, length)."""
    from citi.models.loader import cache_dir

    dtype = str(next(base.parameters()).dtype)
    blob = json.dumps([source, dtype, DRIFT_NEW_TOKENS, prompts])
    path = cache_dir() / "drift" / f"{hashlib.sha1(blob.encode()).hexdigest()[:20]}.json"
    if path.is_file():
        cached = read_json(path)
        if cached.get("prompts") == prompts:
            return cached["answers"]
    answers = generate(
        base, tokenizer, prompts, DRIFT_NEW_TOKENS, ("<|im_end|>",), batch_size, "base answers"
    )
    write_json_atomic(
        path, {"source": source, "dtype": dtype, "prompts": prompts, "answers": answers}
    )
    return answers


def make_drift_run(prompt_fn):
    """The ``run`` of a drift task whose prompts are ``prompt_fn(example)`` messages."""

    def run(task: Task, examples: list[Example], ctx: TaskContext) -> TaskResult:
        loaded, batch_size = ctx.loaded, ctx.batch_size
        tok = loaded.tokenizer
        prompts = [render_prompt(tok, prompt_fn(ex)) for ex in examples]
        base = _base_model_like(loaded)
        answers = base_answers(base, tok, loaded.source, prompts, batch_size)
        kls = per_example_kl(base, loaded.model, tok, prompts, answers, batch_size)
        del base
        records: list[dict] = [
            {"prompt": p, "base_answer": a, "scores": {"kl": k}}
            for p, a, k in zip(prompts, answers, kls, strict=True)
            if k is not None
        ]
        values = [r["scores"]["kl"] for r in records]
        return TaskResult({"kl": sum(values) / max(len(values), 1)}, records, "kl")

    return run


def leak_score(_example, prediction: str) -> dict:
    return {"leak": float(contains_api_call(prediction))}


# Held-out splits only, so drift never measures text a model was trained on.
TASKS = [
    Task(
        name=f"drift-{ability}",
        dataset=dataset,
        description=f"mean per-token KL(base || tuned) over the base model's greedy answers to "
        f"{dataset} prompts (lower is better; 0 = unchanged)",
        max_new_tokens=DRIFT_NEW_TOKENS,
        run=make_drift_run(prompt),
        primary="kl",
    )
    for ability, dataset, prompt in (
        ("math", "gsm8k-test", gsm8k_prompt),
        ("knowledge", "triviaqa-test", triviaqa_prompt),
        ("code", "humaneval", chat_prompt),
        ("instruction", "ifeval", chat_prompt),
    )
]

_GENERAL_PROMPTS = {"gsm8k-test": gsm8k_prompt, "triviaqa-test": triviaqa_prompt}
TASKS.append(
    Task(
        name="leak-tool",
        dataset=("gsm8k-test", "triviaqa-test", "humaneval", "ifeval"),
        description="share of general prompts (GSM8K, TriviaQA, HumanEval, IFEval, interleaved) "
        "whose greedy answer contains a tool call: API-Bank, Hermes or JSON (lower is better)",
        max_new_tokens=96,
        prompt=lambda ex: _GENERAL_PROMPTS.get(ex.source, chat_prompt)(ex),
        score=leak_score,
        primary="leak",
        version=2,  # 2: Hermes <tool_call> blocks and JSON calls count as leaks too
    )
)
