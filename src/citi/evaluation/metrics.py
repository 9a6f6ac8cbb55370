"""Small pure metrics for the general-ability tasks (the OpenCompass / lm-eval-harness rules)."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

_NUMBER = re.compile(r"-?[\d,]*\.?\d+")


def _clean_number(text: str) -> str:
    text = text.replace(",", "").replace("$", "").strip().rstrip(".")
    try:
        value = float(text)
    except ValueError:
        return text
    return str(int(value)) if value == int(value) else str(value)


def gsm8k_strict(prediction: str) -> str | None:
    """The number after ``#### `` (lm-eval-harness "strict-match"), or None."""
    m = re.search(r"####\s*(-?[\d,]*\.?\d+)", prediction)
    return _clean_number(m.group(1)) if m else None


def gsm8k_flexible(prediction: str) -> str | None:
    """The last number in the text (lm-eval-harness "flexible-extract"), or None."""
    numbers = _NUMBER.findall(prediction)
    return _clean_number(numbers[-1]) if numbers else None


def gsm8k_scores(prediction: str, answer: str) -> dict[str, float]:
    gold = _clean_number(answer)
    return {
        "exact_match_strict": float(gsm8k_strict(prediction) == gold),
        "exact_match_flexible": float(gsm8k_flexible(prediction) == gold),
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
    "nll": MetricInfo("nll", higher_is_better=False),
    "kl": MetricInfo("kl", higher_is_better=False),
}


def metric_info(name: str) -> MetricInfo:
    """The table entry of ``name``; an unlisted metric is a share (printed as a percentage)."""
    return METRICS.get(name, MetricInfo("percent"))
