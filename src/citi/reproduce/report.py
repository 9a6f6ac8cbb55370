"""``report.md`` of a reproduction: tables shaped like the paper's, figures, settings, timings."""

from __future__ import annotations

from pathlib import Path

import yaml

from citi.evaluation.benchmarks.apibank import ERROR_TYPES
from citi.evaluation.tables import RAW_METRICS, format_entry, limits_text
from citi.io import read_json, write_text_atomic
from citi.reproduce.pilot import pilot_section
from citi.reproduce.tuning import tune_section


def _cell(entry: dict | None, base: dict | None = None) -> str:
    if entry is None:
        return "-"
    primary = entry["primary"]
    text = format_entry(entry)
    if primary == "nll" and base is not None:
        text += f" ({entry['metrics']['nll'] - base['metrics']['nll']:+.3f})"
    return text


def _results(out: Path, run: str) -> dict:
    path = out / "eval" / run / "results.json"
    return read_json(path)["tasks"] if path.is_file() else {}


def main_table(out: Path, runs: list[str], tasks: list[str]) -> str:
    results = {r: _results(out, r) for r in runs}
    base = results.get("base", {})
    head = "| method | " + " | ".join(f"{t} ({_header(results, t)})" for t in tasks) + " |"
    lines = [head, "|" + " --- |" * (len(tasks) + 1)]
    for r in runs:
        cells = [_cell(results[r].get(t), base.get(t) if r != "base" else None) for t in tasks]
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _value(out: Path, run: str, task: str) -> float | None:
    entry = _results(out, run).get(task)
    if entry is None:
        return None
    value = entry["metrics"][entry["primary"]]
    return value if entry["primary"] in RAW_METRICS else 100 * value


def _is_raw(out: Path, config, task: str) -> bool:
    for m in config.methods:
        for r in config.run_names(m):
            entry = _results(out, r).get(task)
            if entry is not None:
                return entry["primary"] in RAW_METRICS
    return False


def noise_table(out: Path, config, tasks: list[str]) -> str:
    """Method means and the largest spread between the seeds of one method: descriptive only
    (the verdicts come from paired tests, citi.reproduce.comparisons)."""
    means, spread = {}, {}
    for m in config.methods:
        for t in tasks:
            vals = [v for r in config.run_names(m) if (v := _value(out, r, t)) is not None]
            if len(vals) == len(config.seeds):
                means[m, t] = sum(vals) / len(vals)
                spread[m, t] = max(vals) - min(vals)
    pairs = [(a, b) for i, a in enumerate(config.methods) for b in config.methods[i + 1 :]]
    head = ["task", "noise (largest seed spread)"]
    head += [f"mean {m}" for m in config.methods] + [f"{b} − {a}" for a, b in pairs]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for t in tasks:
        if not all((m, t) in means for m in config.methods):
            continue
        noise = max(spread[m, t] for m in config.methods)
        fmt = "{:.3f}" if _is_raw(out, config, t) else "{:.1f}"
        cells = [t, fmt.format(noise)] + [fmt.format(means[m, t]) for m in config.methods]
        for a, b in pairs:
            diff = means[b, t] - means[a, t]
            cells.append(("+" if diff >= 0 else "") + fmt.format(diff))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _header(results: dict, task: str) -> str:
    for res in results.values():
        if task in res:
            primary = res[task]["primary"]
            if primary == "nll":
                return "NLL, Δ vs base"
            if primary in RAW_METRICS:
                return primary
            return primary + " %"
    return ""


def error_table(
    out: Path, runs: list[str], tasks: list[str], prefix: str = "apibank-", types=ERROR_TYPES
) -> str:
    api_tasks = [t for t in tasks if t.startswith(prefix) and not t.endswith("-response")]
    if not api_tasks:
        return ""
    lines = [
        "| method | task | samples | " + " | ".join(types) + " |",
        "|" + " --- |" * (len(types) + 3),
    ]
    for r in runs:
        res = _results(out, r)
        for t in api_tasks:
            if t in res:
                m = res[t]["metrics"]
                lines.append(
                    f"| {r} | {t} | {m['examples']} | "
                    + " | ".join(str(m["errors"].get(e, 0)) for e in types)
                    + " |"
                )
    return "\n".join(lines)


def training_table(out: Path, runs: list[str]) -> str:
    lines = [
        "| method | steps | trainable parameters per stage | eval loss before → after |",
        "| --- | --- | --- | --- |",
    ]
    for m in runs:
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


def budget_table(out: Path, config) -> str:
    """Per method (one row per seed's run): what training spent, from each run's summary.json.
    Trainable parameters per stage; optimizer steps; the sequences, tokens (prompt and answer)
    and label tokens the optimizer steps saw, epochs counted ("-" for runs trained before
    citi counted them)."""
    lines = [
        "| method | run | trainable parameters per stage | optimizer steps | sequences | "
        "tokens | label tokens |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method in config.methods:
        for run in config.run_names(method):
            path = out / "runs" / run / "summary.json"
            if not path.is_file():
                continue
            s = read_json(path)
            params = ", ".join(f"{k} {v:,}" for k, v in s["trainable_parameters"].items())
            seen = s.get("seen") or {}
            counts = [f"{seen[k]:,}" if k in seen else "-" for k in ("sequences", "tokens")]
            counts.append(f"{seen['label_tokens']:,}" if "label_tokens" in seen else "-")
            lines.append(
                f"| {method} | {run} | {params} | {s['global_steps']:,} | "
                + " | ".join(counts)
                + " |"
            )
    return "\n".join(lines)


def _budgets(config, out: Path, runs: list[str], tasks: list[str], steps: dict) -> list[str]:
    """What each method spent: a method that trains more parameters, for more steps or on
    more tokens is not compared like for like."""
    table = budget_table(out, config)
    if table.count("\n") < 2:
        return []
    return [
        "## Training budgets",
        "",
        "Per run, from its summary.json: trainable parameters of each stage, optimizer steps, "
        "and the training sequences, tokens (prompt and answer, without padding) and label "
        "tokens its optimizer steps saw, every epoch counted.",
        "",
        table,
        "",
    ]


def _headline(config, out: Path, runs: list[str], tasks: list[str], steps: dict) -> list[str]:
    """The trade-off figure and the verdict per claim, when drift was measured."""
    parts: list[str] = []
    tradeoff = out / "analysis" / "tradeoff.json"
    if tradeoff.is_file():
        from citi.reproduce.tradeoff import verdict_table

        result = read_json(tradeoff)
        parts += [
            "## Headline: tool gain against general drift",
            "",
            "x: the drop of the API-Bank tool NLL against the base model; y: the mean over the "
            "drift tasks of KL(base ‖ tuned) on the base model's own greedy answers to held-out "
            "general prompts (it does not reward learning an answer style). Lines go through "
            "the training snapshots (cheap subsets), stars are the final full evaluations."
            + ("" if config.decisive else " **This preset is too small to decide anything.**"),
            "",
        ]
        if (out / "analysis" / "tradeoff.png").is_file():
            parts += ["![Trade-off](analysis/tradeoff.png)", ""]
        parts += [
            "Verdicts (rules fixed in `citi/reproduce/comparisons.py`): paired tests on the "
            "same items, seeds resampled within method, Holm-corrected across the claims; "
            "A − B with its 95% interval and the smallest effect each test could detect:",
            "",
            verdict_table(result, config.decisive),
            "",
        ]
        if result.get("paper_claim"):
            from citi.reproduce.comparisons import paper_claim_text

            parts += [
                "The paper's claim (CITI keeps tool use like LoRA while forgetting less), read "
                "off these rows by the rule fixed before the runs "
                "(`docs/guides/main-preregistration.md`, `comparisons.paper_claim`):",
                "",
                *paper_claim_text(result["paper_claim"]),
                "",
            ]
    return parts


def _main(config, out: Path, runs: list[str], tasks: list[str], steps: dict) -> list[str]:
    """The main table, shaped like the paper's Table 3."""
    parts: list[str] = []
    parts += [
        "## Tool use and general abilities (shaped like the paper's Table 3)",
        "",
        "Percentages for accuracy-type metrics; retention is the mean per-token NLL of "
        "held-out reference answers (lower is better), with the change against the base "
        f"model. {limits_text(vars(config.eval))}",
        "",
        main_table(out, runs, tasks),
        "",
    ]
    return parts


def _noise(config, out: Path, runs: list[str], tasks: list[str], steps: dict) -> list[str]:
    """Method means against the seed-to-seed spread (two or more seeds)."""
    parts: list[str] = []
    if len(config.seeds) > 1:
        parts += [
            "## Method means and seed spread",
            "",
            f"Every method was trained with seeds {', '.join(map(str, config.seeds))} "
            "(`NAME-seedS` rows above). Noise is the largest spread between the seeds of one "
            "method, shown for scale: the verdicts above come from paired tests, not from it. "
            "Accuracy-type metrics in percentage points, retention in NLL (lower is better).",
            "",
            noise_table(out, config, tasks),
            "",
        ]
    return parts


def _errors(config, out: Path, runs: list[str], tasks: list[str], steps: dict) -> list[str]:
    """The API-Bank error taxonomy (Table 7) and BFCL's verdicts."""
    parts: list[str] = []
    errors = error_table(out, runs, tasks)
    if errors:
        parts += ["## API-Bank error taxonomy (Table 7)", "", errors, ""]
    from citi.evaluation.benchmarks import bfcl

    errors = error_table(out, runs, tasks, "bfcl-", bfcl.ERROR_TYPES)
    if errors:
        parts += ["## BFCL verdicts (beyond the paper)", "", errors, ""]
    return parts


def _sweep(config, out: Path, runs: list[str], tasks: list[str], steps: dict) -> list[str]:
    """The MOLoRA alpha sweep, when the preset ran one."""
    parts: list[str] = []
    sweep = out / "analysis" / "sweep.json"
    if sweep.is_file():
        sw = read_json(sweep)
        parts += [
            "## MOLoRA alpha sweep",
            "",
            f"Short `{sw['method']}` runs, one per alpha, scored by {sw['criterion']}. "
            f"Chosen: **alpha {sw['chosen']:g}** (used by the variants with `alpha: swept`).",
            "",
            "| alpha | validation loss before | after |",
            "| --- | --- | --- |",
        ]
        parts += [
            f"| {c['alpha']:g} | {c['validation_loss_before']:.4f} | {c['validation_loss']:.4f} |"
            for c in sw["candidates"]
        ]
        parts.append("")
    return parts


def _training(config, out: Path, runs: list[str], tasks: list[str], steps: dict) -> list[str]:
    """Training losses and stage times."""
    parts: list[str] = []
    parts += ["## Training", "", training_table(out, runs[1:]), ""]
    return parts


def _jaccard(config, out: Path, runs: list[str], tasks: list[str], steps: dict) -> list[str]:
    """Importance overlap across abilities (Fig. 3)."""
    parts: list[str] = []
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
    return parts


def _router(config, out: Path, runs: list[str], tasks: list[str], steps: dict) -> list[str]:
    """Router gates on tool and non-tool inputs (Fig. 6, 7)."""
    parts: list[str] = []
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
    return parts


def _replace(config, out: Path, runs: list[str], tasks: list[str], steps: dict) -> list[str]:
    """Component replacement (Table 1)."""
    parts: list[str] = []
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
    return parts


def _icc(config, out: Path, runs: list[str], tasks: list[str], steps: dict) -> list[str]:
    """ICC similarity after ft and citi (Fig. 2, 8, 9)."""
    parts: list[str] = []
    for method in ("ft", "citi"):
        icc = out / "analysis" / f"icc-{method}" / "icc.json"
        if icc.is_file():
            result = read_json(icc)
            ref = result.get("reference") or {}
            parts += [
                f"## ICC similarity after `{method}` (Fig. 2, 8, 9)",
                "",
                "Mean over layers of cos(ICC_tool, ICC_t) at the attention and FFN inputs"
                + (
                    "; the reference columns use ICC*_t of the model fully fine-tuned on "
                    f"`{config.icc.reference_dataset}` (the figure's dashed lines)."
                    if ref
                    else "."
                ),
                "",
                "| ability | attention | FFN |" + (" attention (ref) | FFN (ref) |" if ref else ""),
                "| --- | --- | --- |" + (" --- | --- |" if ref else ""),
            ]

            def mean(values):
                return sum(values) / len(values)

            for ability, per in result["tuned"].items():
                row = f"| {ability} | {mean(per['attn']):.3f} | {mean(per['ffn']):.3f} |"
                if ability in ref:
                    row += f" {mean(ref[ability]['attn']):.3f} | {mean(ref[ability]['ffn']):.3f} |"
                parts.append(row)
            parts += ["", f"![ICC {method}](analysis/icc-{method}/icc.png)", ""]
    return parts


def _times_and_settings(
    config, out: Path, runs: list[str], tasks: list[str], steps: dict
) -> list[str]:
    """The time of every step and the resolved settings."""
    parts: list[str] = []
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
    return parts


SECTIONS = (
    pilot_section,
    _headline,
    _main,
    _noise,
    _errors,
    _sweep,
    tune_section,
    _training,
    _budgets,
    _jaccard,
    _router,
    _replace,
    _icc,
    _times_and_settings,
)


def write_report(config, out: Path, steps: dict) -> Path:
    runs = ["base", *(r for m in config.methods for r in config.run_names(m))]
    tasks = config.eval.tasks
    parts = [f"# CITI reproduction: preset `{config.name}`", ""]
    if config.note:
        parts += [f"> {config.note.strip()}", ""]
    for section in SECTIONS:
        parts += section(config, out, runs, tasks, steps)
    path = out / "report.md"
    write_text_atomic(path, "\n".join(parts))
    return path


def _asdict(config) -> dict:
    from dataclasses import asdict

    return asdict(config)
