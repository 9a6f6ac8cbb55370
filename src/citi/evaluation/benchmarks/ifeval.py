"""IFEval scoring with lm-evaluation-harness's own instruction checkers.

lm-eval's checkers count sentences with NLTK's punkt model, which NLTK downloads on first use.
Where it cannot be downloaded (an offline machine), sentence counting falls back to lm-eval's
own regex sentence splitter and word tokenisation to NLTK's Treebank tokenizer, and the results
record ``punkt: false``; every other check is lm-eval's unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import io

from citi.data.example import Example
from citi.evaluation.task import Task


@functools.lru_cache(maxsize=1)
def _checkers():
    # Importing lm-eval's IFEval module tries to download punkt and prints to stdout/stderr.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from lm_eval.tasks.ifeval import instructions_util, utils
    try:
        instructions_util._get_sentence_tokenizer()
        punkt = True
    except LookupError:
        instructions_util.count_sentences = lambda text: len(
            instructions_util.split_into_sentences(text)
        )
        # lm-eval also calls nltk.word_tokenize, which needs punkt too: give lm-eval's module
        # (only) an nltk whose word_tokenize uses the punkt-free Treebank tokenizer.
        instructions_util.nltk = _OfflineNltk(instructions_util.nltk)
        punkt = False
    return utils, punkt


class _OfflineNltk:
    def __init__(self, nltk):
        self._nltk = nltk
        self._words = nltk.tokenize.TreebankWordTokenizer()

    def word_tokenize(self, text, *args, **kwargs):
        return self._words.tokenize(text)

    def __getattr__(self, name):
        return getattr(self._nltk, name)


def ifeval_scores(prompt: str, response: str, meta: dict) -> dict:
    """Prompt- and instruction-level accuracy, strict and loose, for one response."""
    utils, punkt = _checkers()
    doc = {
        "key": meta["key"],
        "prompt": prompt,
        "instruction_id_list": meta["instruction_id_list"],
        "kwargs": meta["kwargs"],
    }
    r = utils.process_results(doc, [response])
    return {
        "prompt_level_strict": float(r["prompt_level_strict_acc"]),
        "prompt_level_loose": float(r["prompt_level_loose_acc"]),
        "inst_strict": r["inst_level_strict_acc"],
        "inst_loose": r["inst_level_loose_acc"],
        "punkt": punkt,
    }


def ifeval_aggregate(records: list[dict]) -> dict:
    def inst(key):
        flat = [x for r in records for x in r[key]]
        return sum(flat) / len(flat) if flat else 0.0

    n = len(records)
    return {
        "prompt_level_strict": sum(r["prompt_level_strict"] for r in records) / n,
        "prompt_level_loose": sum(r["prompt_level_loose"] for r in records) / n,
        "inst_level_strict": inst("inst_strict"),
        "inst_level_loose": inst("inst_loose"),
        "punkt": all(r["punkt"] for r in records),
    }


def _score(ex: Example, prediction: str) -> dict:
    return ifeval_scores(ex.messages[0]["content"], prediction, ex.meta)


TASKS = [
    Task(
        name="ifeval",
        dataset="ifeval",
        description="IFEval prompt/instruction-level accuracy, strict and loose (lm-eval checkers)",
        max_new_tokens=512,
        score=_score,
        aggregate=ifeval_aggregate,
        primary="prompt_level_strict",
    )
]
