"""The canonical conversation every user format is turned into, and the checks that make it one.

One form in memory and on disk (one JSON object per line)::

    {"messages": [...], "tools": [...], "task": "tool" | "general"}

OpenAI-style messages: ``system``/``user``/``assistant``/``tool`` roles, assistant turns with
optional ``tool_calls`` (``{"id", "type": "function", "function": {"name", "arguments"}}``, the
arguments a parsed JSON object), tool results with the ``tool_call_id`` and ``name`` of the call
they answer. ``tools`` is a list of ``{"type": "function", "function": {"name", "description",
"parameters"}}`` JSON schemas. A row is tool data when it has tools or calls; ``task`` overrides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from citi.errors import DataError

ROLES = ("system", "user", "assistant", "tool")
TASKS = ("tool", "general")


@dataclass(frozen=True)
class Conversation:
    """One canonical row. ``where`` names its origin (``file:line``) for error messages."""

    messages: tuple[dict[str, Any], ...]
    tools: tuple[dict[str, Any], ...] = ()
    task: str | None = None
    where: str = field(default="", compare=False)

    @property
    def is_tool(self) -> bool:
        """Tool data (the routing label 1): has tools or calls, unless ``task`` says otherwise."""
        if self.task is not None:
            return self.task == "tool"
        return bool(self.tools) or any(m.get("tool_calls") for m in self.messages)

    @property
    def assistant_turns(self) -> list[int]:
        return [i for i, m in enumerate(self.messages) if m["role"] == "assistant"]

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {"messages": [dict(m) for m in self.messages]}
        if self.tools:
            row["tools"] = [dict(t) for t in self.tools]
        if self.task is not None:
            row["task"] = self.task
        return row


def parse_json_text(value: Any, where: str, what: str) -> Any:
    """``value`` itself, or the JSON it holds when it is a string (formats store arguments and
    schemas as JSON text); text that is not JSON is an error naming the field."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as err:
        raise DataError(f"{where}: {what} is not valid JSON ({err.msg}): {_short(value)}") from None


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def canonical_tool(tool: Any, where: str) -> dict[str, Any]:
    """``{"type": "function", "function": {...}}``; a bare ``{name, description, parameters}`` is
    wrapped, JSON-text parameters are parsed."""
    tool = parse_json_text(tool, where, "a tool")
    if isinstance(tool, dict) and tool.get("type") == "function" and "function" in tool:
        fn = parse_json_text(tool["function"], where, "a tool's function")
    else:
        fn = tool
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise DataError(
            f"{where}: field 'tools': {_short(tool)} is not a function schema (no name)"
        )
    out: dict[str, Any] = {"name": fn["name"]}
    if fn.get("description") is not None:
        if not isinstance(fn["description"], str):
            raise DataError(f"{where}: field 'tools': {fn['name']}'s description is not text")
        out["description"] = fn["description"]
    params = parse_json_text(
        fn.get("parameters", {"type": "object", "properties": {}}), where, "parameters"
    )
    if not isinstance(params, dict):
        raise DataError(f"{where}: field 'tools': {fn['name']}'s parameters are not a JSON schema")
    if "properties" in params and not isinstance(params["properties"], dict):
        raise DataError(f"{where}: field 'tools': {fn['name']}'s properties are not an object")
    out["parameters"] = params
    return {"type": "function", "function": out}


def canonical_call(call: Any, where: str, index: int) -> dict[str, Any]:
    """An OpenAI tool call with parsed arguments; ``{name, arguments}`` is accepted as well."""
    call = parse_json_text(call, where, "a tool call")
    if not isinstance(call, dict):
        raise DataError(f"{where}: field 'tool_calls': {_short(call)} is not a call object")
    fn = call.get("function", call)
    fn = parse_json_text(fn, where, "a call's function")
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise DataError(f"{where}: field 'tool_calls': a call has no function name")
    args = fn.get("arguments", fn.get("parameters", {}))
    args = parse_json_text(args if args is not None else {}, where, f"arguments of {fn['name']}")
    if not isinstance(args, dict):
        raise DataError(
            f"{where}: field 'tool_calls': arguments of {fn['name']} are not a JSON object"
        )
    call_id = call.get("id")
    return {
        "id": call_id if isinstance(call_id, str) and call_id else f"call_{index}",
        "type": "function",
        "function": {"name": fn["name"], "arguments": args},
    }


def _message(msg: Any, where: str, n_calls: int) -> dict[str, Any]:
    if not isinstance(msg, dict):
        raise DataError(f"{where}: a message is {_short(msg)}, not an object")
    role = msg.get("role")
    if role not in ROLES:
        raise DataError(
            f"{where}: field 'role': unknown role {role!r} (expected {', '.join(ROLES)})"
        )
    content = msg.get("content")
    if isinstance(content, list):  # OpenAI content parts: keep the text ones
        if not all(isinstance(p, dict) and p.get("type") == "text" for p in content):
            raise DataError(f"{where}: field 'content': only text content parts are supported")
        content = "".join(str(p.get("text", "")) for p in content)
    if content is not None and not isinstance(content, str):
        raise DataError(f"{where}: field 'content' of a {role} turn must be text")
    out: dict[str, Any] = {"role": role, "content": content}
    calls = msg.get("tool_calls")
    if calls:
        if role != "assistant":
            raise DataError(
                f"{where}: field 'tool_calls' on a {role} turn (only assistant turns call)"
            )
        if not isinstance(calls, list):
            raise DataError(f"{where}: field 'tool_calls' must be a list")
        out["tool_calls"] = [canonical_call(c, where, n_calls + i) for i, c in enumerate(calls)]
    elif content is None and role != "tool":
        raise DataError(f"{where}: field 'content': a {role} turn has no text and no tool calls")
    if role == "tool":
        for key in ("tool_call_id", "name"):
            if msg.get(key) is not None:
                out[key] = str(msg[key])
        if content is None:
            out["content"] = ""
    return out


def conversation(row: Any, where: str) -> Conversation:
    """A canonical :class:`Conversation` from a ``{"messages", "tools", "task"}`` dict, checked:
    known roles, calls only on assistant turns, JSON arguments, every tool result answering a
    call, schemas for tools, at least one assistant turn. Errors name ``where`` and the field."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected an object, got {_short(row)}")
    raw = row.get("messages")
    if not isinstance(raw, list) or not raw:
        raise DataError(f"{where}: field 'messages' must be a non-empty list of turns")
    tools_raw = parse_json_text(row.get("tools") or [], where, "field 'tools'")
    if not isinstance(tools_raw, list):
        raise DataError(f"{where}: field 'tools' must be a list of function schemas")
    tools = tuple(canonical_tool(t, where) for t in tools_raw)
    task = row.get("task")
    if task is not None and task not in TASKS:
        raise DataError(f"{where}: field 'task' must be tool or general, got {task!r}")
    messages: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []  # calls of the last calling turn not yet answered
    n_calls = 0
    for i, msg in enumerate(raw):
        m = _message(msg, f"{where}: message {i + 1}", n_calls)
        if m.get("tool_calls"):
            n_calls += len(m["tool_calls"])
            pending = list(m["tool_calls"])
        elif m["role"] == "tool":
            if not pending:
                raise DataError(
                    f"{where}: message {i + 1}: a tool result with no tool call before it"
                )
            call = next((c for c in pending if c["id"] == m.get("tool_call_id")), pending[0])
            pending.remove(call)
            m["tool_call_id"] = call["id"]
            m.setdefault("name", call["function"]["name"])
        else:
            pending = []
        messages.append(m)
    if not any(m["role"] == "assistant" for m in messages):
        raise DataError(f"{where}: field 'messages': the conversation has no assistant turn")
    return Conversation(tuple(messages), tools, task, where)
