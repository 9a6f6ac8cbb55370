"""TriviaQA held-out split: a short answer, exact match against the aliases (SQuAD rules)."""

from __future__ import annotations

import re
import string

from citi.data.example import Example
from citi.evaluation.task import Task


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


def triviaqa_prompt(ex: Example) -> list[dict]:
    return [
        {
            "role": "user",
            "content": "Answer the trivia question with only the answer, no "
            f"explanation.\nQuestion: {ex.messages[0]['content']}",
        }
    ]


def _score(ex: Example, prediction: str) -> dict:
    return {"exact_match": triviaqa_exact_match(prediction, ex.meta["aliases"])}


TASKS = [
    Task(
        name="triviaqa",
        dataset="triviaqa-test",
        description="TriviaQA held-out split, exact match against the aliases",
        max_new_tokens=32,
        stop=("\n",),
        prompt=triviaqa_prompt,
        score=_score,
        primary="exact_match",
    )
]
