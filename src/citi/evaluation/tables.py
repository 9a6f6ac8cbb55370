"""Formatting results for people: every metric by the one metric table (citi.evaluation.metrics),
used by results.md, `citi eval compare` and the reproduction report."""

from __future__ import annotations

from pathlib import Path

from citi.errors import CitiError
from citi.evaluation.metrics import METRICS, metric_info

# Metrics printed as they are (not as percentages), from the one metric table.
RAW_METRICS = {name for name, info in METRICS.items() if info.unit != "percent"}


def format_metric(metric: str, value, ci: dict | None = None) -> str:
    """A share as a percentage (one decimal), an NLL or KL with three decimals; with ``ci``, the
    95% interval in brackets."""
    if not isinstance(value, int | float):
        return str(value)
    if metric_info(metric).unit != "percent":
        text = f"{value:.3f}"
        if ci:
            text += f" [{ci['low']:.3f}, {ci['high']:.3f}]"
        return text
    text = f"{100 * value:.1f}"
    if ci:
        text += f" [{100 * ci['low']:.1f}, {100 * ci['high']:.1f}]"
    return text


def format_entry(entry: dict, with_ci: bool = True) -> str:
    primary = entry["primary"]
    ci = entry["metrics"].get("ci", {}).get(primary) if with_ci else None
    return format_metric(primary, entry["metrics"][primary], ci)


def markdown_table(all_results: list[dict], labels: list[str]) -> str:
    """One row per run, one column per task: its primary metric (shares as percentages, NLL and
    KL as they are) with its 95% interval where one was computed."""
    tasks: list[str] = []
    for r in all_results:
        tasks += [t for t in r["tasks"] if t not in tasks]
    head = (
        "| run | "
        + " | ".join(
            f"{t} ({next(r['tasks'][t]['primary'] for r in all_results if t in r['tasks'])})"
            for t in tasks
        )
        + " |"
    )
    lines = [head, "|" + " --- |" * (len(tasks) + 1)]
    for label, r in zip(labels, all_results, strict=True):
        cells = []
        for t in tasks:
            entry = r["tasks"].get(t)
            cells.append(format_entry(entry) if entry else "-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def limits_text(ev: dict) -> str:
    """How many examples an evaluation section scores, in words."""
    limit = ev.get("limit")
    text = f"Evaluation limit: {limit} examples per task" if limit else "Every example of each task"
    per_task = ev.get("task_limits") or {}
    if per_task:
        text += "; per task: " + ", ".join(f"{t} {n}" for t, n in per_task.items())
    return text + "."


def check_results(results, where: Path) -> dict:
    """A results.json read back from disk, checked by shape (one error line naming the file)."""
    tasks = results.get("tasks") if isinstance(results, dict) else None
    ok = isinstance(tasks, dict) and all(
        isinstance(e, dict)
        and isinstance(e.get("primary"), str)
        and isinstance(e.get("metrics"), dict)
        for e in tasks.values()
    )
    if not ok:
        raise CitiError(
            f"{where / 'results.json'}: not a citi results.json (needs tasks: {{name: {{primary, "
            f"metrics}}}})"
        )
    return results
