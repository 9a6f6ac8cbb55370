"""Tool calls read back from a model's text: Hermes ``<tool_call>`` blocks, bare JSON and
pythonic calls, into ``{"name": str, "arguments": dict}``.

The formats are the ones tool-calling templates and servers write and read:

* Hermes / Qwen2.5 (vLLM ``--tool-call-parser hermes``, llama.cpp ``--jinja``): one
  ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` block per call, text around them;
* bare JSON: one call object, several separated by newlines or ``;``, or a list of them, with
  ``arguments`` (or Llama 3's ``parameters``) as an object or a JSON string (the key must be
  there: ``{"name": "Ada", "age": 36}`` is data, not a call), also in OpenAI's
  ``{"type": "function", "function": {...}}`` shape and under a ``{"tool_calls": [...]}`` key;
  Mistral's ``[TOOL_CALLS]`` and Llama's ``<|python_tag|>`` prefixes and a ```` ```json ````
  fence are stripped first;
* pythonic ``[f(a=1), g(b='x')]`` (BFCL's prompting format, Llama 3.2's), read with :mod:`ast`
  and ``ast.literal_eval`` only: model output is never evaluated.

Output that is not a valid call stays text: ``calls`` is empty, ``content`` keeps the text, and
``error`` names why when the text clearly tried to call (an unparsable ``<tool_call>`` body, a
call object with no name or non-object arguments, a ``f(...)`` that is not a literal call). An
empty ``<tool_call></tool_call>`` pair is no call at all (prose naming the tags).
Plain prose is ``error=None``. The parser never raises on any string.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field

MAX_OUTPUT_CHARS = 20_000  # longer outputs are not parsed (a guard against runaway generations)

PARSE_ERRORS = ("invalid_json", "invalid_call", "invalid_python", "too_long")


@dataclass(frozen=True)
class ParsedOutput:
    """One model output: its text content and the calls it makes (``{"name", "arguments"}``)."""

    content: str
    calls: list[dict] = field(default_factory=list)
    error: str | None = None  # one of PARSE_ERRORS when the text tried to call and failed

    @property
    def attempted(self) -> bool:
        """Whether the output made a call, valid or not."""
        return bool(self.calls) or self.error is not None


class _NotACall(Exception):
    """A call-shaped thing that is not a valid call; ``args[0]`` is the error class."""


_HERMES = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.S)
# A closed block with nothing in it holds no call: prose that names the tags (as the Hermes
# tool prelude itself does: "within <tool_call></tool_call> XML tags") is not a failed call.
# vLLM's hermes parser also returns such output as text.
_EMPTY_BLOCK = re.compile(r"<tool_call>\s*</tool_call>")
_PREFIXES = ("[TOOL_CALLS]", "<|python_tag|>")
_FENCE = re.compile(r"\A```(?:json|python|tool_call)?\s*\n?(.*?)\n?```\s*\Z", re.S)
_PY_CALL = re.compile(r"\A\[?\s*[A-Za-z_][\w.]*\s*\(")
# How a JSON call starts (its first key), to tell a cut-off call from other broken JSON.
_CALL_START = re.compile(
    r'\A\[?\s*\{\s*(?:"(?:name|function|tool_calls)"\s*:|"type"\s*:\s*"function")'
)
_JSON_WORDS = {"true": True, "false": False, "null": None}


def parse_tool_calls(text: str) -> ParsedOutput:
    """The calls in ``text`` and the text around them (see the module docstring)."""
    if not isinstance(text, str):
        return ParsedOutput("", [], "invalid_call")
    if len(text) > MAX_OUTPUT_CHARS:
        looks = "<tool_call>" in text or text.lstrip()[:1] in ("{", "[")
        return ParsedOutput(text.strip(), [], "too_long" if looks else None)
    try:
        if "<tool_call>" in _EMPTY_BLOCK.sub("", text):
            return _hermes(text)
        return _bare(text)
    except RecursionError:  # pathologically nested brackets
        return ParsedOutput(text.strip(), [], "invalid_json" if "<tool_call>" in text else None)


def _hermes(text: str) -> ParsedOutput:
    calls = []
    for block in _HERMES.finditer(text):
        if _EMPTY_BLOCK.fullmatch(block.group(0)):
            continue
        body = _unfence(block.group(1).strip())
        try:
            obj = json.loads(body)
        except ValueError:
            return ParsedOutput(text.strip(), [], "invalid_json")
        try:
            found = _calls_from_json(obj, strict=True)
        except _NotACall as e:
            return ParsedOutput(text.strip(), [], e.args[0])
        calls.extend(found or [])
    content = _HERMES.sub("", text).strip()
    return ParsedOutput(content, calls)


def _unfence(text: str) -> str:
    m = _FENCE.match(text)
    return m.group(1).strip() if m else text


def _bare(text: str) -> ParsedOutput:
    body = text.strip()
    for prefix in _PREFIXES:
        if body.startswith(prefix):
            body = body[len(prefix) :].lstrip()
    body = _unfence(body)
    if body[:1] in ("{", "["):
        parsed = _json_calls(body)
        if parsed is not None:
            return parsed
    if _PY_CALL.match(body):
        try:
            return ParsedOutput("", _python_calls(body))
        except _NotACall as e:
            return ParsedOutput(text.strip(), [], e.args[0])
    return ParsedOutput(text.strip(), [])


def _json_calls(body: str) -> ParsedOutput | None:
    """Calls from JSON at the start of ``body`` (several values may follow each other, split by
    spaces, ``,`` or ``;``); the rest is content. None when the start is not a JSON call."""
    decoder = json.JSONDecoder()
    calls: list[dict] = []
    pos = 0
    while pos < len(body) and body[pos] in "{[":
        try:
            obj, end = decoder.raw_decode(body, pos)
        except ValueError:
            if calls:
                break  # the calls before it stand; the rest is text
            # A truncated or malformed call object is an error; other brackets are prose.
            return ParsedOutput(body, [], "invalid_json") if _CALL_START.match(body) else None
        try:
            found = _calls_from_json(obj, strict=False)
        except _NotACall as e:
            return ParsedOutput(body, [], e.args[0])
        if found is None:
            if calls:
                break
            return None
        calls.extend(found)
        pos = end
        while pos < len(body) and body[pos] in " \t\r\n;,":
            pos += 1
    return ParsedOutput(body[pos:].strip(), calls) if calls else None


def _calls_from_json(obj, strict: bool) -> list[dict] | None:
    """The calls a decoded JSON value holds; None when it is not call-shaped (``strict``: inside a
    ``<tool_call>`` block, where anything else is an ``invalid_call``)."""
    if isinstance(obj, dict) and isinstance(obj.get("tool_calls"), list):
        obj = obj["tool_calls"]
    if isinstance(obj, list):
        if not obj or not all(isinstance(o, dict) for o in obj):
            if strict:
                raise _NotACall("invalid_call")
            return None
        calls = [_call_from_json(o, strict) for o in obj]
        if any(c is None for c in calls):
            return None
        return calls  # type: ignore[return-value]
    if not isinstance(obj, dict):
        if strict:
            raise _NotACall("invalid_call")
        return None
    call = _call_from_json(obj, strict)
    return None if call is None else [call]


def _call_from_json(obj: dict, strict: bool) -> dict | None:
    wrapped = isinstance(obj.get("function"), dict)
    if wrapped:  # OpenAI: {"type": "function", "function": {...}}
        obj = obj["function"]
    has_args = "arguments" in obj or "parameters" in obj
    if "name" not in obj:
        if strict or has_args:
            raise _NotACall("invalid_call")
        return None  # a JSON answer for the user, not a call
    if not (strict or wrapped or has_args):
        return None  # {"name": "Ada", "age": 36} is data; a bare call names its arguments
    name = obj["name"]
    if not isinstance(name, str) or not name.strip():
        raise _NotACall("invalid_call")
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):  # OpenAI sends arguments as a JSON string
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            raise _NotACall("invalid_json") from None
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise _NotACall("invalid_call")
    return {"name": name.strip(), "arguments": args}


def _python_calls(body: str) -> list[dict]:
    """``[f(a=1), g(b='x')]`` or ``f(a=1)``: keyword arguments with literal values only."""
    try:
        tree = ast.parse(body, mode="eval")
    except (SyntaxError, ValueError, MemoryError):
        raise _NotACall("invalid_python") from None
    node = tree.body
    elts = node.elts if isinstance(node, ast.List | ast.Tuple) else [node]
    if not elts:
        raise _NotACall("invalid_python")
    return [_python_call(e) for e in elts]


def _python_call(node: ast.expr) -> dict:
    if not isinstance(node, ast.Call) or node.args:  # positional arguments have no name
        raise _NotACall("invalid_python")
    args = {}
    for kw in node.keywords:
        if kw.arg is None:  # **kwargs
            raise _NotACall("invalid_python")
        args[kw.arg] = _literal(kw.value)
    return {"name": _dotted(node.func), "arguments": args}


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    raise _NotACall("invalid_python")


def _literal(node: ast.expr):
    """A JSON value from a literal: ``true``/``false``/``null`` as JSON reads them, another bare
    word as its text (as BFCL's decoder reads it), tuples as lists; sets, bytes, complex numbers
    and anything computed are not arguments."""
    if isinstance(node, ast.Name):
        return _JSON_WORDS.get(node.id, node.id)
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError):
        raise _NotACall("invalid_python") from None
    return _jsonable(value)


def _jsonable(value):
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _jsonable(v) for k, v in value.items()}
    raise _NotACall("invalid_python")


def hermes_call_text(call: dict) -> str:
    """One call as the Hermes / Qwen2.5 templates write it (what :func:`parse_tool_calls`
    reads back): a ``<tool_call>`` block around ``{"name": ..., "arguments": {...}}``."""
    body = json.dumps({"name": call["name"], "arguments": call["arguments"]}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"
