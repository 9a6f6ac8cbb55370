"""Converters from the common conversation formats to canonical rows, and ``--format auto``.

Each converter turns one raw record into a ``{"messages", "tools", "task"}`` dict that
:func:`citi.data.canonical.conversation` then checks. Formats:

- ``messages``: OpenAI chat (``messages`` with ``tool_calls``/``tool`` turns, a ``tools`` column);
- ``sharegpt``: LLaMA-Factory ShareGPT (``conversations`` of ``{from, value}`` with roles
  human/gpt/function_call/observation/system, ``tools`` as JSON text, an optional ``system``);
- ``hermes``: ShareGPT-like turns whose text holds ``<tool_call>``/``<tool_response>`` blocks
  and a system prompt listing ``<tools>``;
- ``xlam``: ``query``/``tools``/``answers`` JSON text with Python-style types (``str``, ``int``);
- ``apibank``: API-Bank's text calls (``API-Request: [Name(key='value')]``), kept as text;
- ``alpaca``: ``instruction``/``input``/``output`` (plus ``system``/``history``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from citi.data.canonical import parse_json_text
from citi.errors import DataError

FORMATS = ("messages", "sharegpt", "hermes", "xlam", "apibank", "alpaca")

SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "function_call": "assistant",
    "observation": "tool",
    "tool": "tool",
    "function": "tool",
    "system": "system",
}
TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.S)
TOOL_RESPONSE = re.compile(r"<tool_response>\s*(.*?)\s*</tool_response>", re.S)
TOOLS_BLOCK = re.compile(r"<tools>\s*(.*?)\s*</tools>", re.S)


def _turns(rec: dict, where: str) -> list[dict]:
    turns = rec.get("conversations", rec.get("messages"))
    if not isinstance(turns, list) or not turns:
        raise DataError(f"{where}: field 'conversations' must be a non-empty list of turns")
    for i, t in enumerate(turns):
        if not isinstance(t, dict) or "from" not in t or "value" not in t:
            raise DataError(f"{where}: turn {i + 1} is not a {{from, value}} object")
    return turns


def _role(turn: dict, where: str, i: int) -> str:
    role = SHAREGPT_ROLES.get(turn["from"])
    if role is None:
        raise DataError(
            f"{where}: turn {i + 1}: field 'from': unknown role {turn['from']!r} "
            f"(expected {', '.join(SHAREGPT_ROLES)})"
        )
    return role


def _with_system(rec: dict, messages: list[dict]) -> list[dict]:
    system = rec.get("system")
    if isinstance(system, str) and system.strip():
        return [{"role": "system", "content": system}, *messages]
    return messages


def from_messages(rec: dict, where: str) -> dict:
    if (
        rec.get("messages")
        and isinstance(rec["messages"][0], dict)
        and "from" in rec["messages"][0]
    ):
        return from_sharegpt(rec, where)  # LLaMA-Factory's ShareGPT under a "messages" column
    return {"messages": rec.get("messages"), "tools": rec.get("tools"), "task": rec.get("task")}


def from_sharegpt(rec: dict, where: str) -> dict:
    messages: list[dict] = []
    for i, turn in enumerate(_turns(rec, where)):
        role, value = _role(turn, where, i), turn["value"]
        if turn["from"] == "function_call":
            calls = parse_json_text(value, f"{where}: turn {i + 1}", "a function_call value")
            calls = calls if isinstance(calls, list) else [calls]
            messages.append({"role": "assistant", "content": None, "tool_calls": calls})
        else:
            messages.append({"role": role, "content": value})
    return {
        "messages": _with_system(rec, messages),
        "tools": rec.get("tools"),
        "task": rec.get("task"),
    }


def _hermes_tools(text: str, where: str) -> list:
    """The tools listed in a Hermes system prompt: a JSON list, or one schema per line."""
    tools: list = []
    for block in TOOLS_BLOCK.findall(text):
        try:
            parsed = json.loads(block)
            tools.extend(parsed if isinstance(parsed, list) else [parsed])
        except json.JSONDecodeError:
            for line in filter(None, (s.strip() for s in block.splitlines())):
                tools.append(parse_json_text(line, where, "a tool in <tools>"))
    return tools


def from_hermes(rec: dict, where: str) -> dict:
    messages: list[dict] = []
    tools = parse_json_text(rec.get("tools") or [], where, "field 'tools'")
    for i, turn in enumerate(_turns(rec, where)):
        role, value = _role(turn, where, i), turn["value"]
        at = f"{where}: turn {i + 1}"
        if not isinstance(value, str):
            raise DataError(f"{at}: field 'value' must be text")
        if role == "system" and "<tools>" in value:
            # The tool listing is rebuilt by the chat template: keep the tools, not the prompt.
            tools = (tools or []) + _hermes_tools(value, at)
            continue
        if role == "assistant" and "<tool_call>" in value:
            calls = [parse_json_text(c, at, "a <tool_call>") for c in TOOL_CALL.findall(value)]
            text = TOOL_CALL.sub("", value).strip()
            messages.append({"role": "assistant", "content": text or None, "tool_calls": calls})
        elif "<tool_response>" in value:
            for result in TOOL_RESPONSE.findall(value):
                messages.append({"role": "tool", "content": result})
        else:
            messages.append({"role": role, "content": value})
    return {"messages": _with_system(rec, messages), "tools": tools, "task": rec.get("task")}


# xLAM types are Python's: "str", "int, optional", "List[str]", "Dict[str, Any]".
PY_TYPES = {
    "str": "string",
    "string": "string",
    "int": "integer",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "bool": "boolean",
    "boolean": "boolean",
    "dict": "object",
    "object": "object",
    "list": "array",
    "array": "array",
    "tuple": "array",
    "set": "array",
}


def python_type_schema(text: str) -> dict[str, Any]:
    """JSON Schema for a Python-style type name (``List[int]`` -> array of integers); an
    unknown type (``Any``, ``Callable``) is left unconstrained."""
    text = text.strip()
    head, _, inner = text.partition("[")
    kind = PY_TYPES.get(head.strip().lower())
    if kind is None:
        return {}
    schema: dict[str, Any] = {"type": kind}
    if kind == "array" and inner.endswith("]"):
        item = python_type_schema(inner[:-1].split(",")[0])
        if item:
            schema["items"] = item
    return schema


def xlam_parameters(params: Any, where: str) -> dict[str, Any]:
    """xLAM's ``{arg: {type, description, default}}`` as a JSON Schema object; ``, optional``
    marks arguments that are not required."""
    if isinstance(params, dict) and params.get("type") == "object":
        return params  # already JSON Schema
    if not isinstance(params, dict):
        raise DataError(f"{where}: field 'tools': parameters must be an object")
    props, required = {}, []
    for name, spec in params.items():
        spec = spec if isinstance(spec, dict) else {"type": str(spec)}
        type_text = str(spec.get("type", ""))
        optional = type_text.endswith("optional")
        prop = python_type_schema(type_text.removesuffix("optional").strip().rstrip(","))
        if spec.get("description"):
            prop["description"] = spec["description"]
        if "default" in spec:
            prop["default"] = spec["default"]
        props[name] = prop
        if not optional:
            required.append(name)
    return {"type": "object", "properties": props, "required": required}


def from_xlam(rec: dict, where: str) -> dict:
    for key in ("query", "tools", "answers"):
        if key not in rec:
            raise DataError(f"{where}: lacks field {key!r} (xLAM rows have query, tools, answers)")
    tools = parse_json_text(rec["tools"], where, "field 'tools'")
    answers = parse_json_text(rec["answers"], where, "field 'answers'")
    if not isinstance(tools, list) or not isinstance(answers, list):
        raise DataError(f"{where}: fields 'tools' and 'answers' must be lists")
    schemas = []
    for t in tools:
        if not isinstance(t, dict) or "name" not in t:
            raise DataError(f"{where}: field 'tools': {t!r} is not a function schema")
        schemas.append({**t, "parameters": xlam_parameters(t.get("parameters", {}), where)})
    if not answers:
        raise DataError(f"{where}: field 'answers' is empty: no call to supervise")
    answer = {"role": "assistant", "content": None, "tool_calls": answers}
    return {
        "messages": [{"role": "user", "content": rec["query"]}, answer],
        "tools": schemas,
        "task": rec.get("task"),
    }


def _alpaca_messages(rec: dict, where: str, answer_key: str) -> list[dict]:
    for key in ("instruction", answer_key):
        if not isinstance(rec.get(key), str):
            raise DataError(f"{where}: field {key!r} must be text")
    inp = rec.get("input") or ""
    prompt = f"{rec['instruction']}\n{inp}" if inp.strip() else rec["instruction"]
    messages: list[dict] = []
    for pair in rec.get("history") or []:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise DataError(f"{where}: field 'history' must hold [user, assistant] pairs")
        messages += [
            {"role": "user", "content": pair[0]},
            {"role": "assistant", "content": pair[1]},
        ]
    messages += [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": rec[answer_key]},
    ]
    return _with_system(rec, messages)


def from_alpaca(rec: dict, where: str) -> dict:
    return {"messages": _alpaca_messages(rec, where, "output"), "task": rec.get("task")}


def from_apibank(rec: dict, where: str) -> dict:
    key = "expected_output" if "expected_output" in rec else "output"
    return {"messages": _alpaca_messages(rec, where, key), "task": rec.get("task", "tool")}


CONVERTERS: dict[str, Callable[[dict, str], dict]] = {
    "messages": from_messages,
    "sharegpt": from_sharegpt,
    "hermes": from_hermes,
    "xlam": from_xlam,
    "apibank": from_apibank,
    "alpaca": from_alpaca,
}


def _looks_hermes(turns: Any) -> bool:
    return isinstance(turns, list) and any(
        isinstance(t, dict)
        and isinstance(t.get("value"), str)
        and ("<tool_call>" in t["value"] or "<tools>" in t["value"])
        for t in turns
    )


def detect_format(rec: Any, where: str) -> str:
    """The format of a record, from its keys (``--format auto``); an error names the candidates
    when the keys fit none or several."""
    if not isinstance(rec, dict):
        raise DataError(f"{where}: a record is not an object")
    keys = set(rec)
    found = []
    if "messages" in keys:
        found.append("messages")
    if "conversations" in keys:
        found.append("hermes" if _looks_hermes(rec["conversations"]) else "sharegpt")
    if {"query", "answers"} <= keys:
        found.append("xlam")
    if "instruction" in keys and ({"output", "expected_output"} & keys):
        text = f"{rec.get('output', '')}{rec.get('expected_output', '')}"
        found.append("apibank" if "expected_output" in keys or "API-Request:" in text else "alpaca")
    if len(found) == 1:
        return found[0]
    shown = ", ".join(sorted(keys)) or "none"
    if found:
        raise DataError(
            f"{where}: the format is ambiguous (keys: {shown}); it could be "
            f"{' or '.join(found)}: pass --format"
        )
    raise DataError(
        f"{where}: cannot recognise the format from the keys ({shown}); expected messages "
        f"(messages), sharegpt/hermes (conversations), xlam (query, tools, answers) or "
        f"alpaca/apibank (instruction, output): pass --format {{{','.join(FORMATS)}}}"
    )
