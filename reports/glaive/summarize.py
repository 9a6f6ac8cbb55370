"""The results JSON of reports/glaive: every run's measures with their 95% intervals (as
`citi eval` wrote them) and each trained run's paired difference from the base model on the
same items (citi.reproduce.stats.compare_paired: a paired bootstrap, 95% two-sided interval).

    python reports/glaive/summarize.py RUNS_DIR --out reports/glaive/results.json

Pairs: tool-call measures over the turns each is defined on (call turns for AST accuracy and its
parts, text turns for false calls; the same turns for every model), the general measures item by
item. The parse rate is not paired: the turns it covers (outputs that tried to call) differ
between models.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from citi.io import read_json, write_json_atomic
from citi.reproduce import stats
from citi.reproduce.comparisons import item_scores

RUNS = ("base", "lora", "citi")
TOOL_METRICS = (
    "ast_accuracy",
    "call_exact_match",
    "tool_name_accuracy",
    "argument_f1",
    "missed_call_rate",
    "false_call_rate",
)
LOWER_IS_BETTER = {"missed_call_rate", "false_call_rate", "leak"}
GENERAL = ("triviaqa-mc", "leak-tool")


def _records(run_dir: Path, task: str) -> list[dict]:
    path = run_dir / "predictions" / f"{task}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _tool_items(run_dir: Path) -> dict[str, list[tuple[tuple, float]]]:
    """Per metric: ((conversation, turn), score) over the turns the metric is defined on."""
    out: dict[str, list] = {m: [] for m in TOOL_METRICS}
    for r in _records(run_dir, "tool-calls"):
        for m in TOOL_METRICS:
            if r["scores"].get(m) is not None:
                out[m].append(((r["conversation"], r["turn"]), float(r["scores"][m])))
    return out


def _paired(name: str, a: list[float], b: list[float], lower: bool) -> dict:
    c = stats.compare_paired(name, a, b, higher_is_better=not lower)
    return {"diff": c.diff, "low": c.low, "high": c.high, "items": len(a)}


def _task_entry(run_dir: Path, task: str) -> dict:
    entry = read_json(run_dir / "tasks" / f"{task}.json")
    keep = ("primary", "metrics", "limit", "seconds", "truncated_prompts")
    return {k: entry.get(k) for k in keep}


def summarize(runs_dir: Path) -> dict:
    dirs = {run: runs_dir / f"eval-{run}" for run in RUNS}
    results: dict = {"runs": {}, "paired_vs_base": {}, "training": {}}
    for run, d in dirs.items():
        results["runs"][run] = {t: _task_entry(d, t) for t in ("tool-calls", *GENERAL)}
    base_tool = _tool_items(dirs["base"])
    for run in RUNS[1:]:
        paired: dict = {"tool-calls": {}}
        tool = _tool_items(dirs[run])
        for m in TOOL_METRICS:
            a, b = dict(tool[m]), dict(base_tool[m])
            if a.keys() != b.keys():
                raise SystemExit(f"{run}: tool-calls {m} is scored on other turns than base's")
            if a:
                keys = sorted(a)
                a_s, b_s = [a[k] for k in keys], [b[k] for k in keys]
                paired["tool-calls"][m] = _paired(m, a_s, b_s, m in LOWER_IS_BETTER)
        for task in GENERAL:
            a_s, b_s = item_scores(dirs[run], task), item_scores(dirs["base"], task)
            if a_s is None or b_s is None or len(a_s) != len(b_s):
                raise SystemExit(f"{run}: {task}: no per-item scores paired with base's")
            primary = results["runs"][run][task]["primary"]
            paired[task] = {primary: _paired(primary, a_s, b_s, primary in LOWER_IS_BETTER)}
        results["paired_vs_base"][run] = paired
        summary = runs_dir / run / "summary.json"
        if summary.is_file():
            results["training"][run] = read_json(summary)
    return results


def _pct(x) -> str:
    return "—" if x is None else f"{round(100 * x, 1) + 0.0:.1f}"


def _signed(x: float) -> str:
    return f"{round(100 * x, 1) + 0.0:+.1f}"  # + 0.0: no "-0.0" for an interval of width 0


def tables(results: dict) -> str:
    """The report's two tables in Markdown: each run's measures with 95% intervals, and each
    trained run's paired difference from base (percentage points)."""
    metrics = [("tool-calls", m) for m in ("ast_accuracy", "parse_rate", *TOOL_METRICS[1:])]
    metrics += [("triviaqa-mc", "accuracy"), ("leak-tool", "leak")]
    lines = ["| measure | " + " | ".join(RUNS) + " |", "|---" * (len(RUNS) + 1) + "|"]
    for task, m in metrics:
        cells = []
        for run in RUNS:
            entry = results["runs"][run][task]["metrics"]
            ci = entry.get("ci", {}).get(m) or {}
            low, high = ci.get("low"), ci.get("high")
            ci_text = f" [{_pct(low)}, {_pct(high)}]" if low is not None else ""
            cells.append(_pct(entry.get(m)) + ci_text)
        lines.append(f"| {task} {m} | " + " | ".join(cells) + " |")
    lines += ["", "| paired vs base | items | " + " | ".join(RUNS[1:]) + " |"]
    lines.append("|---" * (len(RUNS) + 1) + "|")
    for task, m in metrics:
        pairs = [results["paired_vs_base"][r].get(task, {}).get(m) for r in RUNS[1:]]
        if not all(pairs):
            continue
        cells = [f"{_signed(p['diff'])} [{_signed(p['low'])}, {_signed(p['high'])}]" for p in pairs]
        lines.append(f"| {task} {m} | {pairs[0]['items']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs_dir", type=Path)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    results = summarize(args.runs_dir)
    write_json_atomic(args.out, results)
    print(tables(results), end="")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
