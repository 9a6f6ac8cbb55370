"""BFCL (Berkeley Function-Calling Leaderboard), Python AST categories: decoding and checking.

The model answers ``[func(arg=value), ...]``. The text is read as bfcl-eval's prompting decoder
reads it, but with :mod:`ast` only (``citi.evaluation.benchmarks.bfcl_decode``: nothing is
evaluated, constant expressions are folded from the tree where BFCL calls ``eval``), into
``[{name: {arg: value}}]``, and checked with the rules of bfcl-eval's AST checker, verdict for
verdict (a differential test against bfcl-eval itself):

* the number of calls must match (one for simple/multiple), parallel calls match in any order;
* the function name must match;
* every required parameter must be present, and no parameter may appear that the function does
  not declare or the answer does not list;
* a value must have the declared type (an int is promoted to a float; a tuple is a list only
  where the declared type is ``tuple``; list items are checked one level deep). BFCL's
  "variable" rule: where the possible answers have another type than the declared one they name
  a variable, a value of their type is accepted and compared exactly;
* strings are compared after normalisation (case, spaces and ``,./-_*^`` removed, ' → "), at
  BFCL's depth: a string value, the items of a list, the values of a dict, never deeper;
* an omitted optional parameter is accepted only when ``""`` is among its possible answers, and
  an explicit ``''`` where it has the declared type;
* irrelevance: correct when the output decodes to no call. What BFCL's decoder cannot read (a
  ```` ```python ```` fence, a set literal, a comparison, an attribute) is no call, as in BFCL.

Error codes (one per sample) name the first rule broken, like BFCL's ``error_type``.
"""

from __future__ import annotations

import re
from typing import Any

from citi.data.bfcl import SYSTEM_PROMPT  # noqa: F401 (the prompt lives with the data)
from citi.data.example import Example
from citi.evaluation.benchmarks.bfcl_decode import MAX_OUTPUT_CHARS, decode_calls  # noqa: F401
from citi.evaluation.task import API_STOPS, Task, verdict_aggregate

CATEGORIES = ("simple", "multiple", "parallel", "parallel_multiple", "irrelevance")

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


# -- checking ------------------------------------------------------------------------------------
_STRIP = re.compile(r"[ ,./\-_*^]")


def normalise_string(text: str) -> str:
    return _STRIP.sub("", text).lower().replace("'", '"')


def _norm(value):
    """One level of BFCL's string normalisation: strings only, never inside nested values."""
    return normalise_string(value) if isinstance(value, str) else value


_TYPES = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "any": str,
}


def _answer_type(options: list):
    """The type of the first real possible answer ("" only marks a parameter as omittable)."""
    return next((type(o) for o in options if o != ""), None)


def _type_check(
    value: Any, options: list, expected: type[Any], nested: type | None
) -> tuple[bool, bool]:
    """(valid, is_variable). BFCL's "variable" rule: when the possible answers have another type
    than the declared one, they name a variable, and a value of their type is accepted and then
    compared exactly. Lists get one level of item checking; an option that is not a list (such as
    the optional marker "") passes it."""
    answer_type = _answer_type(options)
    is_variable = answer_type is not None and answer_type is not expected
    if type(value) is expected:
        if nested is None:
            return True, is_variable
        for option in options:
            if not isinstance(option, list) or all(
                _type_check(item, option, nested, None)[0] for item in value
            ):
                return True, is_variable
        return False, is_variable
    if answer_type is not None and type(value) is answer_type:
        return True, True
    return False, is_variable


def _string_ok(value: str, options: list) -> bool:
    return normalise_string(value) in [normalise_string(o) for o in options if isinstance(o, str)]


def _list_ok(value: list, options: list) -> bool:
    # "" (optional) counts as an empty list here, as in BFCL.
    return [_norm(v) for v in value] in [[_norm(v) for v in o] for o in options]


def _dict_ok(value: dict, options: list) -> bool:
    for option in options:
        if option == "":
            continue
        if all(
            key in option and _norm(v) in [_norm(o) for o in option[key]]
            for key, v in value.items()
        ) and all(key in value or "" in opts for key, opts in option.items()):
            return True
    return False


def _list_of_dicts_ok(value: list, options: list) -> bool:
    return any(
        len(value) == len(option)
        and all(_dict_ok(v, [o]) for v, o in zip(value, option, strict=True))
        for option in options
    )


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
        declared = properties[key].get("type", "any")
        expected = _TYPES.get(declared)
        if expected is None:  # a type BFCL's Python checker does not know: no type rule
            if not _in(value, want_args[key]):
                return "value_error"
            continue
        nested = None
        if declared in ("array", "tuple"):
            nested = _TYPES.get(properties[key].get("items", {}).get("type", ""))
        if declared == "tuple" and isinstance(value, tuple):
            value = list(value)
        if declared == "float" and type(value) is int:
            value = float(value)  # Python's int -> float promotion
        options = want_args[key]
        valid, is_variable = _type_check(value, options, expected, nested)
        if not valid:
            return "type_error"
        if is_variable:
            ok = _in(value, options)
        elif expected is dict:
            ok = _dict_ok(value, options)
        elif expected is list and nested is dict:
            ok = _list_of_dicts_ok(value, options)
        elif expected is str:
            ok = _string_ok(value, options)
        elif expected is list:
            ok = _list_ok(value, options)
        else:
            ok = _in(value, options)
        if not ok:
            return "value_error"
    for key, options in want_args.items():
        if key not in args and "" not in options:
            return "missing_optional"
    return CORRECT


def _in(value, options: list) -> bool:
    return any(value == o for o in options)


def check_sample(category: str, output: str, functions: list[dict], answers: list[dict]) -> str:
    """The verdict for one BFCL sample (CORRECT or an error code from ERROR_TYPES)."""
    return check_decoded(category, decode_calls(output), functions, answers)


def check_decoded(
    category: str, calls: list[dict] | None, functions: list[dict], answers: list[dict]
) -> str:
    """The verdict for already decoded calls ``[{name: args}]`` (None: nothing decoded), as
    function-calling mode gets them from the chat template's format."""
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
    return match_in_any_order(
        calls,
        answers,
        lambda call, answer: check_call(call, docs.get(next(iter(answer)), {}), answer),
    )


def match_in_any_order(calls: list, expected: list, check) -> str:
    """CORRECT when every expected call is matched (``check(call, expected) == CORRECT``) by a
    distinct call, in any order (BFCL's parallel rule); else the most specific failure: a value
    problem over a name mismatch."""
    unused = list(range(len(calls)))
    for gold in expected:
        verdicts = {j: check(calls[j], gold) for j in unused}
        hit = next((j for j, v in verdicts.items() if v == CORRECT), None)
        if hit is None:
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


def _score(ex: Example, prediction: str) -> dict:
    meta = ex.meta
    verdict = check_sample(meta["category"], prediction, meta["functions"], meta["answers"])
    return {"correct": float(verdict == CORRECT), "verdict": verdict}


TASKS = [
    Task(
        name=f"bfcl-{category.replace('_', '-')}",
        dataset=f"bfcl-{category.replace('_', '-')}",
        description=f"BFCL {category} (Python): AST-checked accuracy and error types",
        max_new_tokens=256 if category.startswith("parallel") else 128,
        stop=API_STOPS,
        score=_score,
        aggregate=verdict_aggregate("accuracy", ERROR_TYPES),
        primary="accuracy",
        version=3,  # 3: constant expressions folded as bfcl-eval decodes them, **{...}
    )
    for category in CATEGORIES
]
