"""Per-turn scores of a generated assistant turn against the reference turn, and their totals.

A turn is a *call turn* when the reference calls tools, else a *text turn*. Every metric is a
mean over the turns it is defined on, with a 95% interval (Wilson for shares, bootstrap for
argument F1; :mod:`citi.evaluation.intervals`):

* ``parse_rate``: of the outputs that tried to call, the share whose calls all parsed;
* ``ast_accuracy`` (call turns): the calls pass the AST check (:mod:`.check`);
* ``call_exact_match`` (call turns): the same calls with exactly the same arguments (JSON
  equality: ``10.0`` is ``10``), in any order;
* ``tool_name_accuracy`` (call turns): the same function names (as a multiset);
* ``argument_f1`` (call turns): F1 of the (function, argument, JSON value) triples; a turn with
  no arguments on either side scores 1 when the names match;
* ``missed_call_rate`` (call turns, lower is better): the output made no call at all;
* ``false_call_rate`` (text turns, lower is better): the output called (or tried to).

Each turn also gets one ``verdict``: ``correct``, ``text`` (a text turn answered in text), an
AST error class, a parse error class, ``missed_call`` or ``false_call``.
"""

from __future__ import annotations

import json
from collections import Counter

from citi.evaluation.intervals import interval
from citi.evaluation.metrics import metric_info
from citi.evaluation.toolcalls.check import CALL_ERRORS, CORRECT, check_calls
from citi.evaluation.toolcalls.parse import PARSE_ERRORS, ParsedOutput, parse_tool_calls

TOOL_CALL_METRICS = (
    "ast_accuracy",
    "parse_rate",
    "call_exact_match",
    "tool_name_accuracy",
    "argument_f1",
    "missed_call_rate",
    "false_call_rate",
)
VERDICTS = (CORRECT, "text", *CALL_ERRORS, *PARSE_ERRORS, "missed_call", "false_call")


def reference_calls(message: dict) -> list[dict]:
    """``{"name", "arguments"}`` of a canonical assistant message's ``tool_calls``."""
    calls = []
    for call in message.get("tool_calls") or []:
        fn = call.get("function", call)
        calls.append({"name": fn["name"], "arguments": fn.get("arguments") or {}})
    return calls


def _canonical(value):
    """A JSON value compared as JSON compares it: 10.0 is 10 (but true is not 1)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return value


def _key(value) -> str:
    return json.dumps(_canonical(value), sort_keys=True, ensure_ascii=False, default=str)


def _triples(calls: list[dict]) -> Counter:
    return Counter((c["name"], k, _key(v)) for c in calls for k, v in c["arguments"].items())


def argument_f1(calls: list[dict], golds: list[dict]) -> float:
    """F1 of the (function, argument, value) triples, values compared exactly."""
    if not calls:
        return 0.0
    pred, gold = _triples(calls), _triples(golds)
    if not pred and not gold:
        return float(Counter(c["name"] for c in calls) == Counter(g["name"] for g in golds))
    hit = sum((pred & gold).values())
    if hit == 0:
        return 0.0
    precision, recall = hit / sum(pred.values()), hit / sum(gold.values())
    return 2 * precision * recall / (precision + recall)


def score_turn(output: str | ParsedOutput, reference: dict, tools: list[dict] | None) -> dict:
    """The per-turn scores of one generated turn (raw text or already parsed) against the
    reference assistant message; a metric that does not apply to the turn is None."""
    parsed = output if isinstance(output, ParsedOutput) else parse_tool_calls(output)
    golds = reference_calls(reference)
    scores: dict = dict.fromkeys(TOOL_CALL_METRICS)
    scores["calls"] = len(parsed.calls)
    if parsed.attempted:
        scores["parse_rate"] = float(parsed.error is None)
    if not golds:
        scores["false_call_rate"] = float(parsed.attempted)
        scores["verdict"] = "false_call" if parsed.attempted else "text"
        return scores
    if not parsed.attempted:
        verdict = "missed_call"
    elif parsed.error is not None:
        verdict = parsed.error
    else:
        verdict = check_calls(parsed.calls, golds, tools)
    names = Counter(c["name"] for c in parsed.calls)
    exact = Counter((c["name"], _key(c["arguments"])) for c in parsed.calls)
    scores.update(
        ast_accuracy=float(verdict == CORRECT),
        call_exact_match=float(exact == Counter((g["name"], _key(g["arguments"])) for g in golds)),
        tool_name_accuracy=float(names == Counter(g["name"] for g in golds)),
        argument_f1=argument_f1(parsed.calls, golds),
        missed_call_rate=float(not parsed.attempted),
        verdict=verdict,
    )
    return scores


def aggregate_turns(records: list[dict]) -> dict:
    """Every metric's mean over the turns it applies to, its 95% interval under ``ci``, the turn
    counts, and how many turns got each verdict. A metric no turn applies to is None."""
    out: dict = {}
    ci: dict = {}
    for name in TOOL_CALL_METRICS:
        values = [r[name] for r in records if r.get(name) is not None]
        out[name] = sum(values) / len(values) if values else None
        if values:
            ci[name] = interval(values, share=metric_info(name).share)
    out["ci"] = ci
    out["turns"] = {
        "call": sum(r.get("ast_accuracy") is not None for r in records),
        "text": sum(r.get("false_call_rate") is not None for r in records),
    }
    counts = Counter(r["verdict"] for r in records)
    out["errors"] = {v: counts[v] for v in VERDICTS if v not in (CORRECT, "text") and counts[v]}
    return out
