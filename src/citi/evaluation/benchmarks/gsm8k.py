"""GSM8K test: a step-by-step answer, scored by lm-eval-harness's gsm8k rules."""

from __future__ import annotations

import re

from citi.data.example import Example
from citi.evaluation.task import Task

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


def gsm8k_prompt(ex: Example) -> list[dict]:
    q = ex.messages[0]["content"]
    return [
        {
            "role": "user",
            "content": f"{q}\nSolve the problem step by step, then give the "
            "final answer on the last line as '#### <number>'.",
        }
    ]


def _score(ex: Example, prediction: str) -> dict:
    return gsm8k_scores(prediction, ex.meta["final"])


TASKS = [
    Task(
        name="gsm8k",
        dataset="gsm8k-test",
        description="GSM8K test, final-number exact match",
        max_new_tokens=384,
        prompt=gsm8k_prompt,
        score=_score,
        primary="exact_match_flexible",
        version=2,  # 2: lm-eval's gsm8k rules exactly (string match, its filters)
    )
]
