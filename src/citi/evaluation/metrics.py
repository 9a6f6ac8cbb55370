"""Small pure metrics for the general-ability tasks (the OpenCompass / lm-eval-harness rules)."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

# lm-eval-harness's gsm8k task (lm_eval/tasks/gsm8k/gsm8k.yaml), rule for rule: a "strict-match"
# filter (the first "#### <number>"), a "flexible-extract" filter (the last number-like run) and
# exact_match after deleting commas, dollar signs, everything up to "#### " and a final period,
# case-insensitively. Equality is of strings, as there: "18.00" does not match "18".
_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
_IGNORE = (",", r"\$", r"(?s).*#### ", r"\.$")


def _normalise(text: str) -> str:
    for pattern in _IGNORE:
        text = re.sub(pattern, "", text)
    return text.lower()


def gsm8k_strict(prediction: str) -> str | None:
    """The number after the first ``#### `` (lm-eval's "strict-match"), or None."""
    found = _STRICT.findall(prediction)
    return found[0].strip() if found else None


def gsm8k_flexible(prediction: str) -> str | None:
    """The last number-like run in the text (lm-eval's "flexible-extract"), or None."""
    found = _FLEXIBLE.findall(prediction)
    if not found:
        return None
    groups = [g for g in found[-1] if g]
    return groups[0].strip() if groups else None


def gsm8k_scores(prediction: str, answer: str) -> dict[str, float]:
    """Strict and flexible exact match against the reference (its final number or the whole
    GSM8K answer text, whose "... #### " part is deleted as lm-eval does)."""
    gold = _normalise(answer)

    def match(extracted: str | None) -> float:
        return float(extracted is not None and _normalise(extracted) == gold)

    return {
        "exact_match_strict": match(gsm8k_strict(prediction)),
        "exact_match_flexible": match(gsm8k_flexible(prediction)),
    }


def normalize_answer(text: str) -> str:
    """TriviaQA / SQuAD normalisation: lower case, no punctuation, articles or extra spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def triviaqa_exact_match(prediction: str, aliases: list[str]) -> float:
    """1.0 when the normalised first line of the prediction equals a normalised alias."""
    first = prediction.strip().split("\n")[0]
    # Chat models often wrap the answer: 'The answer to this question is: "Paris"'.
    first = re.sub(
        r"^(the\s+)?answer(\s+to\s+(this|the)\s+question)?\s*(is)?\s*:?",
        "",
        first.strip(),
        flags=re.I,
    )
    pred = normalize_answer(first)
    return float(any(pred == normalize_answer(a) for a in aliases))


@dataclass(frozen=True)
class MetricInfo:
    """How a metric is printed and compared: a share printed as a percentage, or an NLL / KL
    printed as it is; and which direction is better."""

    unit: str  # "percent", "nll" or "kl"
    higher_is_better: bool = True
    share: bool = False  # a share of 0/1 outcomes (Wilson interval), not a mean of scores


# The one table every writer (results.md, eval compare, the report) formats metrics by.
METRICS: dict[str, MetricInfo] = {
    "accuracy": MetricInfo("percent", share=True),
    "correctness": MetricInfo("percent", share=True),
    "exact_match": MetricInfo("percent", share=True),
    "exact_match_flexible": MetricInfo("percent", share=True),
    "exact_match_strict": MetricInfo("percent", share=True),
    "pass@1": MetricInfo("percent", share=True),
    "prompt_level_strict": MetricInfo("percent", share=True),
    "rouge_l": MetricInfo("percent"),
    "overall": MetricInfo("percent"),
    "score": MetricInfo("percent"),  # MT-Bench: the judge's 1-10 rating / 10
    "leak": MetricInfo("percent", higher_is_better=False, share=True),
    # tool-calls (citi.evaluation.toolcalls.score): per-turn scores on the user's held-out split
    "ast_accuracy": MetricInfo("percent", share=True),
    "parse_rate": MetricInfo("percent", share=True),
    "call_exact_match": MetricInfo("percent", share=True),
    "tool_name_accuracy": MetricInfo("percent", share=True),
    "argument_f1": MetricInfo("percent"),  # a mean of per-turn F1 (bootstrap interval)
    "missed_call_rate": MetricInfo("percent", higher_is_better=False, share=True),
    "false_call_rate": MetricInfo("percent", higher_is_better=False, share=True),
    "nll": MetricInfo("nll", higher_is_better=False),
    "kl": MetricInfo("kl", higher_is_better=False),
}


def metric_info(name: str) -> MetricInfo:
    """The table entry of ``name``; an unlisted metric is a share (printed as a percentage)."""
    return METRICS.get(name, MetricInfo("percent"))
