"""The registered tasks by name: every benchmark module's ``TASKS``, in ``BENCHMARKS`` order.

Add a benchmark by writing a module under ``citi/evaluation/benchmarks/`` with a ``TASKS`` list
and naming it in ``BENCHMARKS`` (the order ``citi eval --help`` lists the tasks in)."""

from __future__ import annotations

import difflib

from citi.errors import CitiError
from citi.evaluation.benchmarks import (
    apibank,
    bfcl,
    bfcl_fc,
    drift,
    gsm8k,
    humaneval,
    ifeval,
    mtbench,
    multiple_choice,
    retention,
    tool_calls,
    tool_learning,
    toolalpaca,
    triviaqa,
)
from citi.evaluation.task import Task

BENCHMARKS = (
    apibank,
    bfcl,
    bfcl_fc,
    toolalpaca,
    mtbench,
    gsm8k,
    triviaqa,
    multiple_choice,
    ifeval,
    humaneval,
    retention,
    drift,
    tool_learning,
    tool_calls,
)

TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Add a task; a second task of the same name is an error, never a silent overwrite."""
    if task.name in TASKS:
        raise ValueError(f"evaluation task {task.name!r} is already registered")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The task called ``name``; an unknown name is one error line with the closest task."""
    if name not in TASKS:
        close = difflib.get_close_matches(name, list(TASKS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise CitiError(f"--tasks: unknown task {name!r}{hint} (known: {', '.join(TASKS)})")
    return TASKS[name]


for _module in BENCHMARKS:
    for _task in _module.TASKS:
        register(_task)
