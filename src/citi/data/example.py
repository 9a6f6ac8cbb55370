"""The one normalised example type every dataset is turned into."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ABILITIES = ("tool", "math", "code", "knowledge", "instruction")
TOOL, GENERAL = 1, 0


@dataclass(frozen=True)
class Example:
    """A chat conversation with (optionally) one supervised assistant turn.

    ``messages`` are ``{"role", "content"}`` dicts. ``target`` is the index of the assistant turn
    that is supervised (training) or the reference (evaluation); ``None`` for prompt-only data
    such as IFEval. ``task_type`` is 1 for tool data and 0 for general data (the routing-loss
    label). ``meta`` keeps what metrics need (aliases, test code, the record's id).

    A user's conversation (:func:`citi.data.conversations.to_examples`) also carries its
    ``tools`` (JSON schemas; messages may then hold ``tool_calls`` and ``tool`` turns) and
    ``supervise``: ``"all"`` assistant turns or the ``"last"``; ``None`` (the named datasets)
    supervises the ``target`` turn only, rendered exactly as before conversations existed.
    """

    messages: tuple[dict[str, Any], ...]
    target: int | None
    task_type: int
    ability: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False)
    tools: tuple[dict[str, Any], ...] = ()
    supervise: str | None = None

    def __post_init__(self) -> None:
        if self.target is not None:
            if not 0 <= self.target < len(self.messages):
                raise ValueError(f"target {self.target} outside {len(self.messages)} messages")
            if self.messages[self.target]["role"] != "assistant":
                raise ValueError("the target message must be an assistant turn")

    @property
    def prompt_messages(self) -> list[dict[str, str]]:
        """The conversation before the target turn (everything, when there is no target)."""
        end = len(self.messages) if self.target is None else self.target
        return list(self.messages[:end])

    @property
    def reference(self) -> str | None:
        return None if self.target is None else self.messages[self.target]["content"]


def single_turn(
    prompt: str,
    answer: str | None,
    *,
    task_type: int,
    ability: str,
    source: str,
    system: str | None = None,
    **meta: Any,
) -> Example:
    """The common case: an optional system prompt, one user turn, one (optional) assistant turn."""
    messages: list[dict[str, str]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    target = None
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
        target = len(messages) - 1
    return Example(tuple(messages), target, task_type, ability, source, meta)
