"""BFCL (Berkeley Function-Calling Leaderboard), Python AST categories: decoding and checking.

The model answers ``[func(arg=value), ...]``. The text is parsed with :mod:`ast` (a parser; nothing
is evaluated) into ``[{name: {arg: value}}]`` and checked against BFCL's possible answers with the
rules BFCL documents for its AST checker:

* the number of calls must match (one for simple/multiple), parallel calls match in any order;
* the function name must match;
* every required parameter must be present, and no parameter may appear that the function does
  not declare or the answer does not list;
* a value must have the declared type (an int is accepted for a float, a list for a tuple);
* strings are compared after normalisation (case, spaces and ``,./-_*^`` removed, ' → ");
  values must be one of the possible answers; an omitted optional parameter is accepted only when
  ``""`` is among its possible answers;
* irrelevance: correct when the output holds no function call.

Error codes (one per sample) name the first rule broken, like BFCL's ``error_type``.
"""

from __future__ import annotations

import ast
import re

CATEGORIES = ("simple", "multiple", "parallel", "parallel_multiple", "irrelevance")
MAX_OUTPUT_CHARS = 20_000  # a guard for the parser against runaway generations

CORRECT = "correct"
ERROR_TYPES = (
    "decode_failed",
    "wrong_count",
    "wrong_func_name",
    "missing_required",
    "unexpected_param",
    "missing_optional",
    "type_error",
    "value_error",
    "irrelevance_called",
)

SYSTEM_PROMPT = (
    "You are an expert in composing functions. You are given a question and a set of possible "
    "functions. Based on the question, make one or more function calls to achieve the purpose. "
    "If none of the functions can be used, say so and make no call. If the question lacks "
    "parameters the function requires, say so as well.\n\n"
    "If you call functions, reply with the calls only, in the format "
    "[func_name1(param_name1=value1, param_name2=value2...), func_name2(params)] and no other "
    "text.\n\nHere is a list of functions in JSON format that you can invoke.\n{functions}\n"
)


# -- decoding ------------------------------------------------------------------------------------
class _Undecodable(Exception):
    pass


def _func_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_func_name(node.value)}.{node.attr}"
    raise _Undecodable


def _value(node: ast.expr):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _value(node.operand)
        if isinstance(inner, int | float) and not isinstance(inner, bool):
            return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return [_value(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):  # {**x}
            raise _Undecodable
        return {_value(k): _value(v) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.Name):  # a bare word, as BFCL reads it
        return node.id
    # Anything else (an expression, a nested call) is kept as its source text, never evaluated.
    return ast.unparse(node)


def _strip_fences(text: str) -> str:
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text.strip().strip("`").strip()


def decode_calls(text: str) -> list[dict] | None:
    """``[{name: {arg: value}}, ...]`` from a model output, or None when it holds no call list."""
    text = _strip_fences(text)
    if not text or len(text) > MAX_OUTPUT_CHARS:
        return None
    if not text.startswith("["):
        text = "[" + text
    if not text.endswith("]"):
        text = text + "]"
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    body = tree.body
    elts = body.elts if isinstance(body, ast.List) else [body]
    calls = []
    try:
        for node in elts:
            if not isinstance(node, ast.Call):
                return None
            # Positional arguments have no name to check, so they are dropped (as BFCL does);
            # a required parameter passed that way is then reported missing.
            args = {kw.arg: _value(kw.value) for kw in node.keywords if kw.arg is not None}
            calls.append({_func_name(node.func): args})
    except (_Undecodable, RecursionError):
        return None
    return calls


# -- checking ------------------------------------------------------------------------------------
_STRIP = re.compile(r"[ ,./\-_*^]")


def normalise_string(text: str) -> str:
    return _STRIP.sub("", text).lower().replace("'", '"')


def _normalised(value):
    if isinstance(value, str):
        return normalise_string(value)
    if isinstance(value, list | tuple):
        return [_normalised(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalised(v) for k, v in value.items()}
    return value


_TYPES = {
    "string": str,
    "integer": int,
    "float": float,
    "number": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "object": dict,
}


def _type_ok(value, declared: str | None, items: dict | None = None) -> bool:
    expected = _TYPES.get(declared or "any")
    if expected is None:  # "any" or an unknown type name: accept
        return True
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return True  # int → float is allowed
    if expected is int and isinstance(value, bool):
        return False
    if not isinstance(value, expected):
        return False
    if expected is list and items:
        return all(_type_ok(v, items.get("type"), items.get("items")) for v in value)
    return True


def _dict_matches(value: dict, option: dict) -> bool:
    """A dict value against one possible dict, whose entries are lists of possible values."""
    for key, options in option.items():
        options = options if isinstance(options, list) else [options]
        if key not in value:
            if "" not in options:
                return False
        elif not _in_options(value[key], options):
            return False
    return all(key in option for key in value)


def _matches(value, option) -> bool:
    """One value against one possible value (lists element-wise, dicts through their options)."""
    if isinstance(value, dict) and isinstance(option, dict):
        return _dict_matches(value, option)
    if isinstance(value, list) and isinstance(option, list):
        return len(value) == len(option) and all(map(_matches, value, option))
    if isinstance(value, str) and isinstance(option, str):
        return normalise_string(value) == normalise_string(option)
    if isinstance(value, str | list | dict) or isinstance(option, str | list | dict):
        return False
    if isinstance(value, bool) or isinstance(option, bool):
        return value is option
    return value == option


def _in_options(value, options: list) -> bool:
    # "" among the options marks the parameter as omittable, never as a value to match.
    return any(_matches(value, o) for o in options if not (isinstance(o, str) and o == ""))


def check_call(call: dict, doc: dict, answer: dict) -> str:
    """Check one decoded call ``{name: args}`` against one possible answer ``{name: {arg:
    [options]}}`` and the function's documentation; returns CORRECT or an error code."""
    (name, args), (want_name, want_args) = next(iter(call.items())), next(iter(answer.items()))
    if name != want_name:
        return "wrong_func_name"
    params = doc.get("parameters", {})
    properties = params.get("properties", {})
    for required in params.get("required", []):
        if required not in args:
            return "missing_required"
    for key, value in args.items():
        if key not in properties or key not in want_args:
            return "unexpected_param"
        spec = properties[key]
        if not _type_ok(value, spec.get("type"), spec.get("items")):
            return "type_error"
        if not _in_options(value, want_args[key]):
            return "value_error"
    for key, options in want_args.items():
        if key not in args and "" not in options:
            return "missing_optional"
    return CORRECT


def check_sample(category: str, output: str, functions: list[dict], answers: list[dict]) -> str:
    """The verdict for one BFCL sample (CORRECT or an error code from ERROR_TYPES)."""
    calls = decode_calls(output)
    if category == "irrelevance":
        return CORRECT if not calls else "irrelevance_called"
    if calls is None:
        return "decode_failed"
    if len(calls) != len(answers):
        return "wrong_count"
    docs = {f["name"]: f for f in functions}
    if category in ("simple", "multiple"):
        answer = answers[0]
        return check_call(calls[0], docs.get(next(iter(answer)), {}), answer)
    # Parallel categories: every expected call matched by a distinct model call, in any order.
    unused = list(range(len(calls)))
    for answer in answers:
        doc = docs.get(next(iter(answer)), {})
        verdicts = {j: check_call(calls[j], doc, answer) for j in unused}
        hit = next((j for j, v in verdicts.items() if v == CORRECT), None)
        if hit is None:
            # Report the most specific failure: a value problem over a name mismatch.
            errors = [v for v in verdicts.values() if v != "wrong_func_name"]
            return errors[0] if errors else "wrong_func_name"
        unused.remove(hit)
    return CORRECT


def render_answer(answer: dict, doc: dict | None = None) -> str:
    """A call string for a possible answer (first option per parameter), for tests and docs."""

    def first(options):
        kept = [o for o in options if o != ""] if isinstance(options, list) else [options]
        return kept[0] if kept else None

    def literal(value):
        if isinstance(value, dict):
            items = {k: first(v) if isinstance(v, list) else v for k, v in value.items()}
            return (
                "{"
                + ", ".join(f"{k!r}: {literal(v)}" for k, v in items.items() if v is not None)
                + "}"
            )
        if isinstance(value, list):
            return "[" + ", ".join(literal(v) for v in value) + "]"
        return repr(value)

    name, args = next(iter(answer.items()))
    required = set((doc or {}).get("parameters", {}).get("required", []))
    # Optional parameters ("" among the options) are omitted: the shortest correct call.
    parts = [
        f"{k}={literal(v)}"
        for k, opts in args.items()
        if (k in required or "" not in opts) and (v := first(opts)) is not None
    ]
    return f"{name}({', '.join(parts)})"
