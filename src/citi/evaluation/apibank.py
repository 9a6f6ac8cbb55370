"""API-Bank scoring: API-call correctness with the error taxonomy of the paper's Table 7, and
ROUGE-L for response samples.

API-Bank's official evaluator executes the predicted call against simulated APIs and compares the
result with the ground truth's. citi compares the predicted call with the ground-truth call
instead (no simulator is run), applying the evaluator's relaxations: dates and times are
normalised, names are case-folded and stripped, and free-text fields (``content``,
``meeting_topic``, ``description``, and ToolSearcher's ``keywords``) match at a word-set Jaccard
index above 0.5. Consequences:
the execution-only error types (HAS_EXCEPTION, OUTPUT_MISMATCH, KEY_ERROR) never occur here, and
a call that differs in a value the API would ignore counts as wrong.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from citi.evaluation.apicall import Call, parse_first_call

CORRECT = "CORRECT"
NO_API_CALL = "NO_API_CALL"
API_NAME_MISMATCH = "API_NAME_MISMATCH"
INVALID_INPUT_PARAMETER = "INVALID_INPUT_PARAMETER"
MISS_INPUT_ARGUMENT = "MISS_INPUT_ARGUMENT"
INPUT_MISMATCH = "INPUT_MISMATCH"
ERROR_TYPES = (
    NO_API_CALL,
    API_NAME_MISMATCH,
    INVALID_INPUT_PARAMETER,
    MISS_INPUT_ARGUMENT,
    INPUT_MISMATCH,
)

# Fields API-Bank's checkers compare by word overlap. ``keywords`` (ToolSearcher) is matched the
# same way here as a stand-in for executing the search and comparing the tool it finds.
FREE_TEXT_FIELDS = {"content", "meeting_topic", "description", "keywords"}
_DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%H:%M:%S",
    "%H:%M",
    "%I:%M %p",
    "%I %p",
)


def normalize_datetime(value: str) -> str | None:
    """A canonical form of a date/time string, or None if it is not one."""
    text = value.strip()
    for fmt in _DATE_FORMATS:
        try:
            dt = datetime.strptime(text, fmt)
        except ValueError:
            continue
        has_date = "%Y" in fmt
        has_time = "%H" in fmt or "%I" in fmt
        if has_date and has_time:
            return dt.strftime("%Y-%m-%d %H:%M:%S")
        return dt.strftime("%Y-%m-%d") if has_date else dt.strftime("%H:%M:%S")
    return None


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def word_jaccard(a: str, b: str) -> float:
    wa, wb = _words(a), _words(b)
    return len(wa & wb) / len(wa | wb) if wa | wb else 1.0


def values_match(key: str, pred: Any, gold: Any) -> bool:
    """API-Bank's relaxed equality for one argument value."""
    p, g = str(pred).strip(), str(gold).strip()
    if p == g:
        return True
    if key in FREE_TEXT_FIELDS:
        return word_jaccard(p, g) > 0.5
    dp, dg = normalize_datetime(p), normalize_datetime(g)
    if dp is not None and dg is not None:
        return dp == dg
    try:
        return float(p) == float(g)
    except ValueError:
        pass
    return p.casefold() == g.casefold()


def api_parameters(prompt: str) -> dict[str, set[str]]:
    """Input parameter names of every API described in the prompt (one JSON object per line)."""
    out = {}
    for line in prompt.splitlines():
        line = line.strip()
        if (
            not line.startswith("{")
            or '"input_parameters"' not in line
            and '"parameters"' not in line
        ):
            continue
        try:
            desc = json.loads(line)
        except json.JSONDecodeError:
            continue
        name = desc.get("name") or desc.get("apiCode")
        params = desc.get("input_parameters") or desc.get("parameters") or {}
        if name and isinstance(params, dict):
            out[name] = set(params)
    return out


def check_call(pred: Call | None, gold: Call, known_params: set[str] | None = None) -> str:
    """The verdict for one API-call sample: CORRECT or one error type."""
    if pred is None:
        return NO_API_CALL
    if pred.name != gold.name:
        return API_NAME_MISMATCH
    allowed = known_params if known_params else set(gold.args)
    if any(k not in allowed and k not in gold.args for k in pred.args):
        return INVALID_INPUT_PARAMETER
    if any(k not in pred.args for k in gold.args):
        return MISS_INPUT_ARGUMENT
    for key, gold_value in gold.args.items():
        if not values_match(key, pred.args[key], gold_value):
            return INPUT_MISMATCH
    return CORRECT


def score_api_sample(prediction: str, reference: str, prompt: str = "") -> str:
    gold = parse_first_call(reference)
    if gold is None:
        raise ValueError(f"ground truth has no API call: {reference!r}")
    known = api_parameters(prompt).get(gold.name)
    return check_call(parse_first_call(prediction), gold, known)


def strip_response_prefix(text: str) -> str:
    """Responses are trained as "AI: ..."; the references have no prefix."""
    return re.sub(r"^\s*AI:\s*", "", text).strip()


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 (rouge-score, with stemming); an empty prediction scores 0."""
    from rouge_score import rouge_scorer

    prediction = strip_response_prefix(prediction)
    if not prediction:
        return 0.0
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return scorer.score(reference, prediction)["rougeL"].fmeasure
