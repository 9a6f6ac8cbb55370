"""The ``tool-calls`` task: every assistant turn of the user's held-out conversations generated
after the gold history, its calls parsed (:mod:`.parse`) and scored (:mod:`.score`).

The conversations are canonical rows (``{"messages", "tools"}``, OpenAI style, arguments as
objects). Each assistant turn is one example: the prompt is the conversation up to it (the
reference calls and tool results of earlier turns included, never the model's own) rendered
with the tools the way citi trains on them
(``citi.data.chat_template.render_generation_prompt``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from citi.errors import CitiError, DataError
from citi.evaluation.toolcalls.parse import hermes_call_text, parse_tool_calls
from citi.evaluation.toolcalls.score import aggregate_turns, score_turn

MAX_NEW_TOKENS = 256
# The end-of-turn markers of common templates, and a tool result the model starts to invent.
STOPS = ("<|im_end|>", "<|eot_id|>", "<tool_response>")
NEEDS_DATA = (
    "the tool-calls task needs held-out conversations: --eval-data SRC (canonical rows, "
    "see docs/guides/tool-calls-eval.md)"
)


@dataclass(frozen=True)
class Turn:
    """One assistant turn to generate: the gold history before it, the tools, the reference."""

    conversation: int  # the row's index in the evaluation data
    index: int  # the assistant message's index in the row
    history: tuple[dict, ...]
    tools: tuple[dict, ...] | None
    reference: dict
    template: str | None = None  # --chat-template (a file or template text); None: citi's choice


def _row(conversation) -> dict:
    if isinstance(conversation, dict):
        return conversation
    return {"messages": conversation.messages, "tools": getattr(conversation, "tools", None)}


def conversation_turns(conversations, template: str | None = None) -> list[Turn]:
    """One :class:`Turn` per assistant message of each canonical conversation, in order."""
    turns = []
    for i, conversation in enumerate(conversations):
        row = _row(conversation)
        messages, tools = list(row["messages"]), row.get("tools") or None
        for j, message in enumerate(messages):
            if message.get("role") == "assistant":
                history, listed = tuple(messages[:j]), tuple(tools) if tools else None
                turns.append(Turn(i, j, history, listed, message, template))
    return turns


def _read_canonical_jsonl(path: Path) -> list[dict]:
    """Canonical rows from a JSONL file (until citi.data.conversations reads every format)."""
    if not path.is_file():
        raise DataError(f"--eval-data: {path}: no such file")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{n}: malformed JSON ({e.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
            raise DataError(f"{path}:{n}: messages: a canonical row needs a list of messages")
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: no records (empty file)")
    return rows


def load_conversations(source) -> list:
    """The evaluation conversations: canonical rows (or Conversations) given in Python, a
    function returning them (read when the task runs, e.g. ``EvalConfig.held_out``), or a SRC."""
    if callable(source):
        source = source()
    if isinstance(source, list | tuple):
        return list(source)
    try:
        from citi.data.conversations import load_conversations as load
    except ImportError:  # the data half of #26 not merged yet: canonical JSONL only
        return _read_canonical_jsonl(Path(source))
    return load(source)


def load_turns(source, limit: int | None = None, template: str | None = None) -> list[Turn]:
    """The turns of the held-out conversations (the first ``limit`` turns with a limit), to be
    rendered with ``template`` (see :class:`Turn`)."""
    if source is None:
        raise CitiError(NEEDS_DATA)
    turns = conversation_turns(load_conversations(source), template)
    if not turns:
        raise DataError(
            f"--eval-data: {source if isinstance(source, str) else 'the rows'}: "
            "no assistant turn to evaluate"
        )
    return turns[:limit] if limit is not None else turns


_TOOLS_PRELUDE = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are "
    "provided with function signatures within <tools></tools> XML tags:\n<tools>\n{tools}\n"
    "</tools>\n\nFor each function call, return a json object with function name and arguments "
    'within <tool_call></tool_call> XML tags:\n<tool_call>\n{{"name": <function-name>, '
    '"arguments": <args-json-object>}}\n</tool_call>'
)


def _hermes_messages(messages: list[dict], tools: list[dict] | None) -> list[dict]:
    """Plain ``{role, content}`` messages holding the tools, calls and results the Hermes way,
    for any chat template (the stand-in for citi's tool prelude until it is merged)."""
    out: list[dict] = []
    for m in messages:
        if m["role"] == "assistant" and m.get("tool_calls"):
            calls = [hermes_call_text(c["function"]) for c in m["tool_calls"]]
            out.append(
                {
                    "role": "assistant",
                    "content": "\n".join([m.get("content") or ""] + calls).strip(),
                }
            )
        elif m["role"] == "tool":
            text = f"<tool_response>\n{m.get('content') or ''}\n</tool_response>"
            if out and out[-1]["role"] == "user" and out[-1].get("tool_result"):
                out[-1]["content"] += "\n" + text
            else:
                out.append({"role": "user", "content": text, "tool_result": True})
        else:
            out.append({"role": m["role"], "content": m.get("content") or ""})
    out = [{"role": m["role"], "content": m["content"]} for m in out]
    if tools:
        listing = _TOOLS_PRELUDE.format(tools="\n".join(json.dumps(t) for t in tools))
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": out[0]["content"] + "\n\n" + listing}
        else:
            out.insert(0, {"role": "system", "content": listing})
    return out


def render_messages(
    tokenizer, messages: list[dict], tools: list[dict] | None, template: str | None = None
) -> str:
    """The prompt of canonical ``messages`` with ``tools``, ending where the assistant starts to
    answer, rendered as citi trains (``template``: a --chat-template file or text)."""
    try:
        from citi.data.chat_template import chat_template_for, render_generation_prompt
    except ImportError:  # the data half of #26 not merged yet: Hermes before the own template
        from citi.data.render import render_prompt

        if template:
            raise CitiError("--chat-template: not supported by this build") from None
        return render_prompt(tokenizer, _hermes_messages(messages, tools))
    chosen = chat_template_for(tokenizer, template) if template else None
    return render_generation_prompt(tokenizer, messages, tools, chosen)


def render_turn(tokenizer, turn: Turn) -> str:
    """The prompt of one turn: its gold history, with the tools."""
    tools = list(turn.tools) if turn.tools else None
    return render_messages(tokenizer, list(turn.history), tools, turn.template)


def run_tool_calls(_task, turns, ctx):
    """The task's run: generate every turn (batched, cached by the runner), parse, score."""
    from citi.evaluation.generation import generate
    from citi.evaluation.task import TaskResult

    loaded, batch_size = ctx.loaded, ctx.batch_size
    tok = loaded.tokenizer
    prompts = [render_turn(tok, t) for t in turns]

    def make():
        return generate(
            loaded.model, tok, prompts, MAX_NEW_TOKENS, STOPS, batch_size, "eval tool-calls"
        )

    outputs = ctx.generated(make)
    records = []
    for turn, prompt, output in zip(turns, prompts, outputs, strict=True):
        parsed = parse_tool_calls(output)
        records.append(
            {
                "conversation": turn.conversation,
                "turn": turn.index,
                "prompt": prompt,
                "prediction": output,
                "parsed": {"content": parsed.content, "calls": parsed.calls, "error": parsed.error},
                "reference": turn.reference,
                "scores": score_turn(parsed, turn.reference, list(turn.tools or [])),
            }
        )
    metrics = aggregate_turns([r["scores"] for r in records])
    return TaskResult(metrics, records)
