"""OpenAI's chat-completions protocol: a request checked into a :class:`ChatRequest` (or an
OpenAI-shaped 4xx :class:`APIError` naming the parameter), and answers shaped as OpenAI's.

Messages and tools are checked by citi's canonical conversation rules (``citi.data.canonical``):
known roles, calls only on assistant turns, JSON arguments, each tool result after a call,
function schemas for tools. Call arguments arrive as JSON strings (OpenAI's wire form) and are
parsed; they go back out as JSON strings.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from citi.errors import DataError


class APIError(Exception):
    """An error answered as ``{"error": {message, type, param, code}}`` with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = (
            status,
            message,
            param,
            code,
            kind,
        )

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        }


@dataclass
class ChatRequest:
    """One checked chat-completions request (canonical messages and tools)."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    tool_choice: str = "auto"  # auto, none, required or function
    forced_name: str | None = None  # tool_choice naming one function
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    temperature: float | None = None  # None or 0: greedy
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None

    @property
    def parses_calls(self) -> bool:
        return bool(self.tools) and self.tool_choice != "none"


def _number(body: dict, key: str, low: float, high: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise APIError(400, f"{key} must be a number from {low} to {high}, got {value!r}", key)
    return float(value)


def _tools(body: dict) -> list[dict[str, Any]] | None:
    from citi.data.canonical import canonical_tool

    tools = body.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise APIError(400, "tools must be a list of function schemas", "tools")
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise APIError(400, f"tools[{i}] is not a {{'type': 'function', ...}} tool", "tools")
        try:
            out.append(canonical_tool(tool, f"tools[{i}]"))
        except DataError as err:
            raise APIError(400, str(err), "tools") from None
    names = [t["function"]["name"] for t in out]
    if len(set(names)) != len(names):
        raise APIError(400, "tools: two tools share a name", "tools")
    return out or None


def _messages(body: dict) -> list[dict[str, Any]]:
    from citi.data.canonical import conversation

    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "messages must be a non-empty list of messages", "messages")
    # citi's rules for a conversation want an assistant turn: one is added to check the
    # request as the start of a conversation, and dropped again.
    probe = {"messages": [*messages, {"role": "assistant", "content": ""}]}
    try:
        checked = conversation(probe, "messages")
    except DataError as err:
        raise APIError(400, str(err), "messages") from None
    return [dict(m) for m in checked.messages[:-1]]


def _tool_choice(body: dict, tools) -> tuple[str, str | None]:
    choice = body.get("tool_choice")
    if choice is None:
        return "auto", None
    if choice in ("auto", "none", "required"):
        if choice == "required" and not tools:
            raise APIError(400, "tool_choice 'required' needs tools", "tool_choice")
        return choice, None
    name = None
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
    if not isinstance(name, str):
        raise APIError(
            400,
            "tool_choice must be 'auto', 'none', 'required' or "
            "{'type': 'function', 'function': {'name': ...}}",
            "tool_choice",
        )
    if name not in [t["function"]["name"] for t in tools or []]:
        raise APIError(400, f"tool_choice names {name!r}, which is not among tools", "tool_choice")
    return "function", name


def parse_request(body: Any) -> ChatRequest:
    """A :class:`ChatRequest` from a decoded JSON body, or an :class:`APIError` (400)."""
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise APIError(400, "model must be the id of a served model", "model")
    if body.get("n", 1) != 1:
        raise APIError(400, "only n=1 is supported", "n")
    key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = body.get(key)
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise APIError(400, f"{key} must be an integer >= 1, got {max_tokens!r}", key)
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or not 0 <= len(stop) <= 4:
        raise APIError(400, "stop must be a string or a list of up to 4 strings", "stop")
    if not all(isinstance(s, str) and s for s in stop):
        raise APIError(400, "stop must be a string or a list of up to 4 strings", "stop")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise APIError(400, f"seed must be an integer, got {seed!r}", "seed")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise APIError(400, "stream must be true or false", "stream")
    options = body.get("stream_options") or {}
    tools = _tools(body)
    choice, forced = _tool_choice(body, tools)
    return ChatRequest(
        model=model,
        messages=_messages(body),
        tools=tools,
        tool_choice=choice,
        forced_name=forced,
        stream=stream,
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", 0, 2),
        top_p=_number(body, "top_p", 0, 1),
        stop=stop,
        seed=seed,
    )


def wire_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parsed ``{"name", "arguments"}`` calls as OpenAI's ``tool_calls`` (new ids, JSON text)."""
    return [
        {
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {
                "name": c["name"],
                "arguments": json.dumps(c["arguments"], ensure_ascii=False),
            },
        }
        for c in calls
    ]


def completion(
    completion_id: str, model: str, content: str | None, calls, finish: str, usage: dict
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }


def chunk(
    completion_id: str, model: str, delta: dict, finish: str | None = None, usage=None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        out["usage"] = usage
    return out


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
