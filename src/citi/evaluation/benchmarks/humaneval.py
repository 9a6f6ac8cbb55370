"""HumanEval: greedy pass@1, the generated function run with its tests in a limited
subprocess (see citi.evaluation.sandbox for the isolation levels)."""

from __future__ import annotations

from citi.data.example import Example
from citi.evaluation.harness import generate_and_score
from citi.evaluation.sandbox import humaneval_program, run_program
from citi.evaluation.task import Task, TaskContext, TaskResult, mean_of


def humaneval_score(ex: Example, prediction: str, allow_unsafe: bool = False) -> dict:
    program = humaneval_program(
        ex.meta["code_prompt"], prediction, ex.meta["test"], ex.meta["entry_point"]
    )
    result = run_program(program, timeout=10.0, allow_unsafe=allow_unsafe)
    return {"pass@1": float(result.passed), "status": result.status, "isolation": result.isolation}


def _aggregate(records: list[dict]) -> dict:
    """pass@1 plus the sandbox isolation level that was in force."""
    out = mean_of(records)
    out["isolation"] = sorted({r.get("isolation", "") for r in records})
    return out


def _run(task: Task, examples: list[Example], ctx: TaskContext) -> TaskResult:
    # The sandbox permission comes with the context, for this evaluation only.
    def score(ex: Example, prediction: str) -> dict:
        return humaneval_score(ex, prediction, allow_unsafe=ctx.unsafe_code)

    return generate_and_score(task, examples, ctx, score)


TASKS = [
    Task(
        name="humaneval",
        dataset="humaneval",
        description="HumanEval pass@1 (greedy), run in a limited subprocess",
        max_new_tokens=384,
        run=_run,
        aggregate=_aggregate,
        primary="pass@1",
    )
]
