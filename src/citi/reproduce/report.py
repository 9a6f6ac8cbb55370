"""``report.md`` of a reproduction: tables shaped like the paper's, figures, settings, timings."""

from __future__ import annotations

from pathlib import Path

import yaml

from citi.evaluation.apibank import ERROR_TYPES
from citi.io import read_json, write_text_atomic


def _cell(entry: dict | None, base: dict | None = None) -> str:
    if entry is None:
        return "-"
    value = entry["metrics"][entry["primary"]]
    if entry["primary"] == "nll":
        text = f"{value:.3f}"
        if base is not None:
            text += f" ({value - base['metrics']['nll']:+.3f})"
        return text
    return f"{100 * value:.1f}"


def _results(out: Path, run: str) -> dict:
    path = out / "eval" / run / "results.json"
    return read_json(path)["tasks"] if path.is_file() else {}


def main_table(out: Path, runs: list[str], tasks: list[str]) -> str:
    results = {r: _results(out, r) for r in runs}
    base = results.get("base", {})
    head = (
        "| method | "
        + " | ".join(
            f"{t} ({'NLL, Δ vs base' if t.startswith('retention') else _primary(results, t)})"
            for t in tasks
        )
        + " |"
    )
    lines = [head, "|" + " --- |" * (len(tasks) + 1)]
    for r in runs:
        cells = [_cell(results[r].get(t), base.get(t) if r != "base" else None) for t in tasks]
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _primary(results: dict, task: str) -> str:
    for res in results.values():
        if task in res:
            return res[task]["primary"] + " %"
    return ""


def error_table(out: Path, runs: list[str], tasks: list[str]) -> str:
    api_tasks = [t for t in tasks if t.startswith("apibank-") and not t.endswith("-response")]
    if not api_tasks:
        return ""
    lines = [
        "| method | task | samples | " + " | ".join(ERROR_TYPES) + " |",
        "|" + " --- |" * (len(ERROR_TYPES) + 3),
    ]
    for r in runs:
        res = _results(out, r)
        for t in api_tasks:
            if t in res:
                m = res[t]["metrics"]
                lines.append(
                    f"| {r} | {t} | {m['examples']} | "
                    + " | ".join(str(m["errors"].get(e, 0)) for e in ERROR_TYPES)
                    + " |"
                )
    return "\n".join(lines)


def training_table(out: Path, methods: list[str]) -> str:
    lines = [
        "| method | steps | trainable parameters per stage | eval loss before → after |",
        "| --- | --- | --- | --- |",
    ]
    for m in methods:
        path = out / "runs" / m / "summary.json"
        if not path.is_file():
            continue
        s = read_json(path)
        ev = s.get("eval", [])
        losses = ""
        if ev:
            first, last = ev[0]["loss"], ev[-1]["loss"]
            losses = ", ".join(f"{k} {first[k]:.3f} → {last[k]:.3f}" for k in first)
        params = ", ".join(f"{k} {v:,}" for k, v in s["trainable_parameters"].items())
        lines.append(f"| {m} | {s['global_steps']} | {params} | {losses} |")
    return "\n".join(lines)


def write_report(config, out: Path, steps: dict) -> Path:
    runs = ["base", *config.methods]
    tasks = config.eval.get("tasks", [])
    parts = [f"# CITI reproduction: preset `{config.name}`", ""]
    if config.note:
        parts += [f"> {config.note.strip()}", ""]
    parts += [
        "## Tool use and general abilities (shaped like the paper's Table 3)",
        "",
        "Percentages for accuracy-type metrics; retention is the mean per-token NLL of "
        "held-out reference answers (lower is better), with the change against the base "
        f"model. Evaluation limit: {config.eval.get('limit')} examples per task.",
        "",
        main_table(out, runs, tasks),
        "",
    ]
    errors = error_table(out, runs, tasks)
    if errors:
        parts += ["## API-Bank error taxonomy (Table 7)", "", errors, ""]
    parts += ["## Training", "", training_table(out, config.methods), ""]
    jac = out / "analysis" / "jaccard.json"
    if jac.is_file():
        j = read_json(jac)
        parts += [
            "## Importance overlap across abilities (Fig. 3)",
            "",
            "| group | mean pairwise Jaccard | random expectation |",
            "| --- | --- | --- |",
        ]
        for g, info in j["groups"].items():
            parts.append(
                f"| {g} | {info['mean_offdiagonal']:.3f} | {info['expected_random']:.3f} |"
            )
        parts += ["", "![Jaccard](analysis/jaccard.png)", ""]
    if (out / "analysis" / "router.png").is_file():
        parts += [
            "## Router gates on tool vs non-tool inputs (Fig. 6, 7)",
            "",
            "Mean gate per router output over the tokens of API-Bank (tool) and GSM8K "
            "(non-tool) examples; output 0 is the null expert.",
            "",
            "![Routers](analysis/router.png)",
            "",
        ]
    rep = out / "analysis" / "replace" / "replace.json"
    if rep.is_file():
        r = read_json(rep)
        parts += [
            "## Component replacement (Table 1)",
            "",
            "Weights of the top (T-x) or bottom (D-x) x% of components by tool importance "
            "copied from the fully fine-tuned model into the base model.",
            "",
            "| variant | " + " | ".join(r["tasks"]) + " |",
            "|" + " --- |" * (len(r["tasks"]) + 1),
        ]
        for variant, res in r["results"].items():
            parts.append(
                f"| {variant} | "
                + " | ".join(f"{res[t]:.3f}" if t in res else "-" for t in r["tasks"])
                + " |"
            )
        parts += ["", "![Replacement](analysis/replace/replace.png)", ""]
    for method in ("ft", "citi"):
        icc = out / "analysis" / f"icc-{method}" / "icc.json"
        if icc.is_file():
            result = read_json(icc)
            parts += [
                f"## ICC similarity after `{method}` (Fig. 2, 8, 9)",
                "",
                "Mean over layers of cos(ICC_tool, ICC_t) at the attention and FFN inputs.",
                "",
                "| ability | attention | FFN |",
                "| --- | --- | --- |",
            ]
            for ability, per in result["tuned"].items():
                parts.append(
                    f"| {ability} | {sum(per['attn']) / len(per['attn']):.3f} | "
                    f"{sum(per['ffn']) / len(per['ffn']):.3f} |"
                )
            parts += ["", f"![ICC {method}](analysis/icc-{method}/icc.png)", ""]
    parts += ["## Time per step", "", "| step | seconds |", "| --- | --- |"]
    parts += [f"| {k} | {v['seconds']} |" for k, v in steps.items()]
    total = sum(v["seconds"] for v in steps.values())
    parts += [
        f"| total | {total:.1f} |",
        "",
        "## Settings",
        "",
        "```yaml",
        yaml.safe_dump(_asdict(config), sort_keys=False).strip(),
        "```",
        "",
    ]
    path = out / "report.md"
    write_text_atomic(path, "\n".join(parts))
    return path


def _asdict(config) -> dict:
    from dataclasses import asdict

    return asdict(config)
