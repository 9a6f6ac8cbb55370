"""``tool-calls``: the user's held-out tool conversations (``--eval-data``), every assistant turn
generated after the gold history and scored by :mod:`citi.evaluation.toolcalls`."""

from __future__ import annotations

from citi.evaluation.task import Task
from citi.evaluation.toolcalls import task as toolcall_task

TASKS = [
    Task(
        name="tool-calls",
        dataset="eval-data",
        description="your held-out tool conversations (--eval-data): each assistant turn generated "
        "after the gold history, calls parsed (Hermes, JSON, pythonic) and AST-checked against "
        "the tools' JSON Schemas; parse rate, exact match, name accuracy, argument F1, "
        "missed/false calls",
        max_new_tokens=toolcall_task.MAX_NEW_TOKENS,
        stop=toolcall_task.STOPS,
        run=toolcall_task.run_tool_calls,
        load=toolcall_task.load_turns,
        primary="ast_accuracy",
    )
]
