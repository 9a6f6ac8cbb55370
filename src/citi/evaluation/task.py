"""The unit of evaluation, as in lm-eval: one :class:`Task` per benchmark split, the
:class:`TaskContext` it runs in, and the :class:`TaskResult` it hands back.

A task is either *generate-and-score* (a prompt per example, one greedy generation, a per-sample
``score`` and an ``aggregate``: the harness runs it) or has its own ``run`` (an agent loop, a
two-turn chat, a log-likelihood, a KL against the base model). See docs/guides/evaluation.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from citi.data.example import Example
from citi.io import read_json, write_json_atomic

# Where a one-line API call answer ends: a blank line or the end of the chat turn.
API_STOPS = ("\n\n", "<|im_end|>")


def chat_prompt(ex: Example) -> list[dict]:
    """The example's own messages up to the answer: the default prompt of a task."""
    return ex.prompt_messages


@dataclass(frozen=True, kw_only=True)
class Task:
    name: str
    dataset: str | tuple[str, ...]  # a tuple: the datasets interleaved, the limit split evenly
    description: str
    primary: str  # the headline metric (a ``run`` may name another in its TaskResult)
    max_new_tokens: int = 128
    stop: tuple[str, ...] = ()
    prompt: Callable[[Example], list[dict]] = chat_prompt
    score: Callable[[Example, str], dict] | None = None  # one example's prediction -> scores
    aggregate: Callable[[list[dict]], dict] | None = None  # per-sample scores -> metrics (mean)
    # A task with its own loop instead of one generation per example:
    # run(task, examples, context) -> TaskResult.
    run: Callable[[Task, list[Example], TaskContext], TaskResult] | None = None
    needs_judge: bool = False  # skipped, with a message, when no judge endpoint is given
    uses_judge: bool = False  # the judge's answers change the result (part of the resume key)
    # A task on the user's own data (--eval-data) instead of a named dataset:
    # load(source, limit, chat_template) -> the examples its run takes.
    load: Callable | None = None
    # Bump when the prompt or the scorer changes: it is part of the resume key, so finished
    # results of the old version are recomputed (version 1 keeps the keys results had before).
    version: int = 1


@dataclass
class TaskContext:
    """What a task may use: the model, the run's settings, the judge, the data and whether
    generated code may run without OS-level isolation (``citi eval --unsafe-code``)."""

    loaded: Any  # citi.models.LoadedModel: .model, .tokenizer, .device, .name, .source
    batch_size: int = 8
    max_length: int = 2048
    data_dir: str | Path | None = None
    judge: Any = None  # citi.evaluation.judge.Judge, or None
    unsafe_code: bool = False
    eval_data: Any = None  # the held-out conversations of a task with ``load`` (--eval-data)
    chat_template: str | None = None  # renders them in place of citi's choice
    cache: Path | None = None  # where generations are kept before scoring
    key: str = ""  # the settings the cached generations belong to
    count: int | None = None  # the number of examples, once they are loaded

    def generated(self, make: Callable[[], list]) -> list:
        """``make()``'s outputs (one per example), saved before scoring or judging so that a
        rerun after a scoring failure does not generate again."""
        cached = read_json(self.cache) if self.cache is not None and self.cache.is_file() else None
        if (
            cached
            and (self.count is None or len(cached["outputs"]) == self.count)
            and cached.get("key") == self.key
        ):
            return cached["outputs"]
        outputs = make()
        if self.cache is not None:
            write_json_atomic(self.cache, {"key": self.key, "outputs": outputs})
        return outputs


@dataclass
class TaskResult:
    metrics: dict  # aggregate metrics (the harness adds "examples" and "ci")
    records: list[dict] = field(default_factory=list)  # per sample, with a "scores" dict
    primary: str = ""  # the headline metric; "" means the task's own


def mean_of(records: list[dict]) -> dict:
    """The mean of every numeric per-sample score."""
    keys = [k for k, v in records[0].items() if isinstance(v, int | float)] if records else []
    return {k: sum(r[k] for r in records) / len(records) for k in keys}


def verdict_aggregate(metric: str, error_types: tuple[str, ...]) -> Callable[[list[dict]], dict]:
    """Share of correct samples as ``metric``, plus the count of each error verdict."""

    def aggregate(records: list[dict]) -> dict:
        counts = Counter(r["verdict"] for r in records)
        return {
            metric: sum(r["correct"] for r in records) / len(records),
            "errors": {e: counts.get(e, 0) for e in error_types},
        }

    return aggregate
