"""A generation read back as an answer: text content, or tool calls parsed by citi's parser
(``citi.evaluation.toolcalls.parse_tool_calls``: Hermes ``<tool_call>`` blocks, bare JSON and
pythonic calls). Output that is not a valid call stays text, never a broken ``tool_calls``.

While streaming, text goes out as soon as it cannot be the start of a call; text that might be
(a ``<tool_call>`` tag or a part of one at the end, or an answer that opens with ``{``/``[``)
is held until the generation ends and then goes out as calls or, when it is none, as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from citi.evaluation.toolcalls import parse_tool_calls

TAG = "<tool_call>"


def forced_prefix(tool_choice: str, name: str | None) -> str:
    """What the answer is started with to force a call (Hermes format): a named function's
    opening, or just a call's opening for ``required``; empty otherwise."""
    import json

    if tool_choice == "function" and name:
        return f'{TAG}\n{{"name": {json.dumps(name, ensure_ascii=False)}, "arguments": '
    if tool_choice == "required":
        return f'{TAG}\n{{"name": "'
    return ""


@dataclass
class Answer:
    content: str | None
    calls: list[dict[str, Any]]  # {"name", "arguments"}
    finish: str


def read_answer(text: str, parses_calls: bool, finish: str, forced_name: str | None) -> Answer:
    """``text`` (the forced prefix included) as content or calls; ``finish`` is the
    generation's own (stop or length), replaced by ``tool_calls`` when calls were made."""
    if not parses_calls:
        return Answer(text, [], finish)
    parsed = parse_tool_calls(text)
    calls = parsed.calls
    if forced_name is not None and any(c["name"] != forced_name for c in calls):
        calls = []  # a forced call must be the named function's
    if not calls:
        return Answer(text, [], finish)
    return Answer(parsed.content or None, calls, "tool_calls")


def _held_from(text: str) -> int:
    """Where text that might still become a call starts (``len(text)``: nowhere)."""
    if text.lstrip()[:1] in ("{", "["):
        return 0
    at = text.find(TAG)
    if at >= 0:
        return at
    for k in range(len(TAG) - 1, 0, -1):
        if text.endswith(TAG[:k]):
            return len(text) - k
    return len(text)


class StreamSplitter:
    """Which part of a growing generation can be streamed as content now."""

    def __init__(self, parses_calls: bool, prefix: str = ""):
        self.parses_calls, self.prefix = parses_calls, prefix
        self.sent = ""

    def feed(self, text: str) -> str:
        """The content delta to send, given the whole text generated so far."""
        if self.prefix:  # a forced call: everything waits for the parser
            return ""
        safe = _held_from(text) if self.parses_calls else len(text)
        safe = max(safe, len(self.sent))
        delta = text[len(self.sent) : safe]
        self.sent += delta
        return delta

    def finish(self, text: str, finish: str, forced_name: str | None) -> tuple[str, Answer]:
        """The last content delta and the answer (its calls still to send)."""
        answer = read_answer(self.prefix + text, self.parses_calls, finish, forced_name)
        if answer.calls:
            content = answer.content or ""
            sent = self.sent.strip()
            rest = content[len(sent) :] if content.startswith(sent) else ""
            return rest, answer
        return (self.prefix + text)[len(self.sent) :], answer
