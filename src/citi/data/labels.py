"""Token ids and labels for a conversation: every assistant turn supervised, nothing else.

A conversation is rendered once with citi's chat template (:mod:`citi.data.chat_template`). Each
supervised assistant turn is the text between the render of the conversation before it (with
the generation prompt) and the render up to and including it, trailing whitespace dropped: its
text, its calls as the template writes them and its end-of-turn token. System and user turns,
tool results and the tool listing are never labelled. The render is split at those boundaries
and each piece tokenised on its own, so a label never covers half a token of the prompt.

Spans are checked per row: the template must be prefix-preserving at every assistant turn and
must write each turn's text, each call's name and each tool's name; otherwise the row is an error
naming it (never silently dropped). A row longer than ``max_length`` loses whole early exchanges
(up to a user turn, so a call and its result stay together); a row whose last exchange alone is
too long is dropped and counted in :class:`EncodeStats`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from citi.data.chat_template import chat_template_for, render_chat
from citi.errors import DataError

IGNORE_INDEX = -100


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    task_type: int


@dataclass
class EncodeStats:
    """What encoding did to a list of conversations (recorded in a run's summary)."""

    rows: int = 0
    encoded: int = 0
    supervised_turns: int = 0
    shortened: int = 0  # rows that lost early exchanges to fit max_length
    dropped: list[str] = field(default_factory=list)  # rows nothing supervised fits in

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "encoded": self.encoded,
            "supervised_turns": self.supervised_turns,
            "shortened_rows": self.shortened,
            "dropped_rows": len(self.dropped),
            "dropped_examples": self.dropped[:5],
        }


def _render(tokenizer, template, messages, tools, where, gen=False) -> str:
    try:
        return render_chat(tokenizer, template, messages, tools, add_generation_prompt=gen)
    except Exception as err:  # jinja's TemplateError, or the template's raise_exception
        raise DataError(
            f"{where}: the chat template cannot render this conversation ({err})"
        ) from None


def _check_span(span: str, message: dict, where: str, turn: int) -> None:
    content = (message.get("content") or "").strip()
    if content and content not in span:
        raise DataError(f"{where}: the chat template drops the text of assistant turn {turn}")
    for call in message.get("tool_calls") or ():
        name = call["function"]["name"]
        if name not in span:
            raise DataError(
                f"{where}: the chat template drops the call to {name} in assistant turn {turn} "
                f"(it cannot render tool calls: pass --chat-template)"
            )


def supervised_spans(
    tokenizer,
    template: str,
    messages: list[dict],
    tools: list[dict] | None,
    supervise: str | None,
    where: str,
) -> tuple[str, list[tuple[int, int]]]:
    """(the render up to the last supervised turn, [(start, end) of each supervised turn]).

    ``supervise`` ``"all"`` supervises every assistant turn; anything else (``"last"``, ``None``)
    the last one."""
    assistant = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    chosen = assistant if supervise == "all" else assistant[-1:]
    full = _render(tokenizer, template, messages[: chosen[-1] + 1], tools, where)
    for tool in tools or ():
        if tool["function"]["name"] not in full:
            raise DataError(
                f"{where}: the chat template does not list the tool {tool['function']['name']} "
                f"(it cannot render tools: pass --chat-template)"
            )
    spans = []
    for turn, i in enumerate(chosen, start=1):
        prompt = _render(tokenizer, template, messages[:i], tools, where, gen=True)
        upto = _render(tokenizer, template, messages[: i + 1], tools, where)
        if not (full.startswith(prompt) and full.startswith(upto) and upto.startswith(prompt)):
            raise DataError(
                f"{where}: the chat template is not prefix-preserving at assistant turn {turn} "
                f"(it rewrites earlier turns); pass --chat-template"
            )
        start, end = len(prompt), len(upto.rstrip())
        _check_span(full[start:end], messages[i], where, turn)
        spans.append((start, end))
    return full[: spans[-1][1]], spans


def _tokenise(tokenizer, text: str, spans: list[tuple[int, int]], task_type: int) -> Encoded:
    cuts = [0] + [b for span in spans for b in span]
    pieces = [text[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    ids = tokenizer(pieces, add_special_tokens=False)["input_ids"]
    input_ids: list[int] = []
    labels: list[int] = []
    for k, piece_ids in enumerate(ids):
        input_ids += piece_ids
        labels += piece_ids if k % 2 else [IGNORE_INDEX] * len(piece_ids)
    return Encoded(input_ids, labels, task_type)


def _exchange_starts(messages: list[dict]) -> list[int]:
    """Where the conversation may be cut: at each user turn after the first, keeping the
    leading system turns."""
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    return users[1:]


def encode_conversation(
    tokenizer,
    example,
    max_length: int,
    template: str | None = None,
    stats: EncodeStats | None = None,
) -> Encoded | None:
    """Ids and labels of a conversation example (``example.supervise`` is ``all`` or ``last``);
    ``None`` when not even its last exchange fits ``max_length`` (counted in ``stats``)."""
    template = template or chat_template_for(tokenizer)
    where = example.meta.get("where") or example.source
    messages = list(example.messages)
    tools = list(example.tools) or None
    head = messages[:1] if messages[0]["role"] == "system" else []
    stats = stats if stats is not None else EncodeStats()
    stats.rows += 1
    for cut in [len(head), *_exchange_starts(messages)]:
        kept = head + messages[cut:] if cut > len(head) else messages
        if not any(m["role"] == "assistant" for m in kept):
            break
        text, spans = supervised_spans(tokenizer, template, kept, tools, example.supervise, where)
        enc = _tokenise(tokenizer, text, spans, example.task_type)
        if len(enc.input_ids) <= max_length:
            stats.encoded += 1
            stats.supervised_turns += len(spans)
            stats.shortened += kept is not messages
            return enc
    stats.dropped.append(where)
    return None
