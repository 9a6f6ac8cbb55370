"""API-Bank scoring: API-call correctness with the error taxonomy of the paper's Table 7, and
ROUGE-L for response samples.

API-Bank's official evaluator executes the predicted call against simulated APIs and compares the
result with the ground truth's using each API's own rule. citi does not run the simulator; it
applies each API's rules to the arguments (``citi.evaluation.benchmarks.apibank_rules``):

* the API name must match (``API_NAME_MISMATCH``); every argument must be one the API declares
  (``INVALID_INPUT_PARAMETER``); every required one must be given (``MISS_INPUT_ARGUMENT``);
* a value the API would reject raises in the official run (``HAS_EXCEPTION``): an ``int`` that is
  not digits, a date/time not in the declared format, a value its own validation refuses (an
  e-mail receiver outside SendEmail's address pattern);
* values are compared the way that API compares them: exactly (tokens, passwords, usernames,
  most fields), stripped or case-folded only where the API does, word-set overlap for the free
  text of agendas, reminders and meeting topics, dates parsed with their declared format where
  the API normalises them (``INPUT_MISMATCH``);
* ToolSearcher is executed: the tool its keywords retrieve must be the ground truth's
  (``citi.evaluation.benchmarks.toolsearch``; without an embedder, a labelled keyword-overlap
  fallback).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable

from citi.data.example import Example
from citi.errors import DataError
from citi.evaluation.apicall import Call, parse_first_call
from citi.evaluation.benchmarks import apibank_rules as rules
from citi.evaluation.task import API_STOPS, Task, verdict_aggregate

CORRECT = "CORRECT"
NO_API_CALL = "NO_API_CALL"
API_NAME_MISMATCH = "API_NAME_MISMATCH"
INVALID_INPUT_PARAMETER = "INVALID_INPUT_PARAMETER"
MISS_INPUT_ARGUMENT = "MISS_INPUT_ARGUMENT"
HAS_EXCEPTION = "HAS_EXCEPTION"
INPUT_MISMATCH = "INPUT_MISMATCH"
ERROR_TYPES = (
    NO_API_CALL,
    API_NAME_MISMATCH,
    INVALID_INPUT_PARAMETER,
    MISS_INPUT_ARGUMENT,
    HAS_EXCEPTION,
    INPUT_MISMATCH,
)
_RESULT = re.compile(r"\]->(\{.*\})\s*$")


def api_specs(prompt: str) -> dict[str, dict[str, dict]]:
    """Parameter specs ({name: {type, description}}) of every API the prompt describes: the JSON
    descriptions given with the instruction and the tools ToolSearcher returned in the dialogue."""
    out: dict[str, dict[str, dict]] = {}
    for line in prompt.splitlines():
        line = line.strip()
        found = []
        if line.startswith("{") and ("input_parameters" in line or '"parameters"' in line):
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        match = _RESULT.search(line)
        if match:  # dataset text (a recorded API result), read with a literal parser only
            try:
                result = ast.literal_eval(match.group(1))
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                result = None
            if isinstance(result, dict):
                output = result.get("output", result)
                found += output if isinstance(output, list) else [output]
        for desc in found:
            if not isinstance(desc, dict):
                continue
            name = desc.get("name") or desc.get("apiCode")
            params = desc.get("input_parameters") or desc.get("parameters") or {}
            if isinstance(name, str) and isinstance(params, dict):
                out[name] = {k: v if isinstance(v, dict) else {} for k, v in params.items()}
    return out


def api_parameters(prompt: str) -> dict[str, set[str]]:
    """Input parameter names of every API described in the prompt."""
    return {name: set(params) for name, params in api_specs(prompt).items()}


def check_call(
    pred: Call | None,
    gold: Call,
    specs: dict[str, dict] | None = None,
    level: str = "2",
    tool_match=None,
) -> str:
    """The verdict for one API-call sample: CORRECT or one error type. ``specs`` are the gold
    API's parameter specs when known; ``tool_match(pred_keywords, gold_keywords)`` decides
    ToolSearcher calls."""
    if pred is None:
        return NO_API_CALL
    if pred.name != gold.name:
        return API_NAME_MISMATCH
    api = gold.name
    declared = specs or {}
    allowed = set(declared) if declared else set(gold.args)
    if any(k not in allowed for k in pred.args):
        return INVALID_INPUT_PARAMETER
    optional = rules.OPTIONAL.get(api, set()) if level != "3" else set()
    if any(k not in pred.args and k not in optional for k in gold.args):
        return MISS_INPUT_ARGUMENT
    converted = {}
    for key, value in pred.args.items():
        ok, value = rules.typed(value, declared.get(key))
        if not ok or not rules.format_ok(value, declared.get(key)):
            return HAS_EXCEPTION
        if not rules.passes_validation(api, key, value, level):
            return HAS_EXCEPTION
        converted[key] = value
    if api == "ToolSearcher" and tool_match is not None:
        pred_kw = rules.text(pred.args.get("keywords", ""))
        gold_kw = rules.text(gold.args.get("keywords", ""))
        return CORRECT if tool_match(pred_kw, gold_kw) else INPUT_MISMATCH
    whole = rules.compares_whole_input(api, level)
    keys = set(gold.args) | (set(pred.args) if whole else set())
    for key in sorted(keys):
        kind = rules.rule_of(api, key, level)
        if kind == rules.IGNORED:
            continue
        if (key in pred.args) != (key in gold.args):
            return INPUT_MISMATCH  # an optional argument given on one side only
        _, gold_value = rules.typed(gold.args[key], declared.get(key))
        if not rules.values_match(kind, converted[key], gold_value, declared.get(key)):
            return INPUT_MISMATCH
    return CORRECT


def score_api_sample(
    prediction: str,
    reference: str,
    prompt: str = "",
    level: str = "2",
    tool_match=None,
) -> str:
    gold = parse_first_call(reference)
    if gold is None:
        raise ValueError(f"ground truth has no API call: {reference!r}")
    specs = api_specs(prompt).get(gold.name)
    return check_call(parse_first_call(prediction), gold, specs, level, tool_match)


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


def _tool_match(ex: Example, level: str) -> tuple[str, Callable[[str, str], bool]]:
    """(method, match) deciding ToolSearcher calls: the retrieved tools compared where an
    embedder and the recorded API descriptions are available, else keyword overlap."""
    from citi.evaluation.benchmarks import toolsearch

    method, searcher = toolsearch.searcher_for(ex.meta.get("apis_file") or "")
    if searcher is None:
        return "keywords", toolsearch.keywords_match
    prep = toolsearch.split_keywords if level == "3" else (lambda k: k)
    return method, lambda pred, gold: searcher.best(prep(pred)) == searcher.best(prep(gold))


def _reference(ex: Example) -> str:
    if ex.reference is None:
        raise DataError(f"{ex.source}: an example without a reference answer cannot be scored")
    return ex.reference


def _api_score(ex: Example, prediction: str) -> dict:
    level = ex.source.removeprefix("apibank-l")[:1]
    method, match = _tool_match(ex, level)
    reference = _reference(ex)
    verdict = score_api_sample(prediction, reference, ex.messages[0]["content"], level, match)
    record = {"correct": float(verdict == CORRECT), "verdict": verdict}
    if "ToolSearcher(" in reference:
        record["toolsearch"] = method
    return record


_verdicts = verdict_aggregate("correctness", ERROR_TYPES)


def _api_aggregate(records: list[dict]) -> dict:
    """Correctness and error counts, plus how ToolSearcher calls were decided."""
    out = _verdicts(records)
    methods = sorted({r["toolsearch"] for r in records if "toolsearch" in r})
    if methods:
        out["toolsearch"] = methods
    return out


def _response_score(ex: Example, prediction: str) -> dict:
    return {"rouge_l": rouge_l(prediction, _reference(ex))}


TASKS = []
for level in ("1", "2", "3"):
    TASKS += [
        Task(
            name=f"apibank-l{level}",
            dataset=f"apibank-l{level}",
            description=f"API-Bank level-{level} API calls: correctness C and error taxonomy",
            max_new_tokens=128,
            stop=API_STOPS,
            score=_api_score,
            aggregate=_api_aggregate,
            primary="correctness",
            version=3,  # 3: look-ups and validations before the checkers, trailing-comma calls
        ),
        Task(
            name=f"apibank-l{level}-response",
            dataset=f"apibank-l{level}-response",
            description=f"API-Bank level-{level} responses: ROUGE-L F1",
            max_new_tokens=128,
            stop=API_STOPS,
            score=_response_score,
            primary="rouge_l",
        ),
    ]
