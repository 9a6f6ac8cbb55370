"""The report's method comparisons, tested on paired per-item scores (citi.reproduce.stats).

The claims, fixed here before any result is read:

- tool use of each CITI-like method is *comparable* to LoRA's: API-Bank correctness (the
  ``apibank-*`` tasks pooled, items paired) no more than ``stats.tool_margin`` below (a
  non-inferiority test; 0.05 = 5 points unless the preset says otherwise);
- its general drift is lower than LoRA's, LoRA+DM's and FT's (per-item KL of the ``drift-*``
  tasks pooled);
- forgetting shows: FT drifts more than LoRA, and each FT run leaks tool calls into general
  answers more often than the base model (``leak-tool``);
- with ``stats.x_star`` set (a tool NLL drop fixed before the runs), the drift claims again at
  equal tool learning: each run's drift where its snapshot curve first reaches x*.

All of them share one Holm correction. With one seed a claim is about those runs; seeds make it
about the methods (see citi.reproduce.stats).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from citi.errors import ConfigError
from citi.io import read_json
from citi.reproduce import stats

DEFAULTS = {"tool_margin": 0.05, "x_star": None, "resamples": 2000}


def check_stats(settings: dict) -> dict:
    """The preset's ``stats:`` section with defaults; one error naming the key when wrong."""
    if not isinstance(settings, dict):
        raise ConfigError("stats: must be a map of settings")
    typos = sorted(set(settings) - set(DEFAULTS))
    if typos:
        raise ConfigError(f"stats: unknown key(s) {', '.join(typos)}; known: {', '.join(DEFAULTS)}")
    values = {**DEFAULTS, **settings}
    margin, x_star, resamples = values["tool_margin"], values["x_star"], values["resamples"]
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin < 1:
        raise ConfigError(f"stats.tool_margin: a share in [0, 1), got {margin!r}")
    if x_star is not None and (isinstance(x_star, bool) or not isinstance(x_star, int | float)):
        raise ConfigError(f"stats.x_star: a tool NLL drop (a number), got {x_star!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 100:
        raise ConfigError(f"stats.resamples: an integer >= 100, got {resamples!r}")
    return values


def item_scores(run_dir: Path, task: str) -> list[float] | None:
    """One run's per-item scores of ``task`` (its primary metric, or ``correct``)."""
    entry_path = run_dir / "tasks" / f"{task}.json"
    records = run_dir / "predictions" / f"{task}.jsonl"
    if not entry_path.is_file() or not records.is_file():
        return None
    primary = read_json(entry_path)["primary"]
    values = []
    for line in records.read_text(encoding="utf-8").splitlines():
        scores = json.loads(line).get("scores", {})
        key = primary if primary in scores else "correct"
        if not isinstance(scores.get(key), int | float):
            return None
        values.append(float(scores[key]))
    return values or None


def _tasks_of(run_dir: Path, prefixes: tuple[str, ...]) -> set[str]:
    folder = run_dir / "predictions"
    if not folder.is_dir():
        return set()
    return {p.stem for p in folder.glob("*.jsonl") if p.stem.startswith(prefixes)}


def pooled_runs(run_dirs: list[Path], prefixes: tuple[str, ...]) -> tuple[np.ndarray, list] | None:
    """[runs, items]: the tasks starting with ``prefixes`` that every run has, pooled in one
    item order; None when they share none or a task's item count differs between runs."""
    common = set.intersection(*(_tasks_of(d, prefixes) for d in run_dirs)) if run_dirs else set()
    if not common:
        return None
    rows = []
    for d in run_dirs:
        per = {t: item_scores(d, t) for t in common}
        if any(v is None for v in per.values()):
            return None
        rows.append(stats.pooled(per))
    if len({len(r) for r in rows}) != 1:
        return None
    return np.asarray(rows), sorted(common)


def _paired(
    out, claim, runs_a, runs_b, prefixes, settings, higher=True, margin=0.0, unit=""
) -> stats.Comparison | None:
    a_dirs = [out / "eval" / r for r in runs_a]
    b_dirs = [out / "eval" / r for r in runs_b]
    pooled = pooled_runs(a_dirs + b_dirs, prefixes)
    if pooled is None:
        return None
    scores, tasks = pooled
    a, b = scores[: len(a_dirs)], scores[len(a_dirs) :]
    c = stats.compare_paired(claim, a, b, higher, margin, settings["resamples"], seed=0, unit=unit)
    c.note = f"{a.shape[1]} items of {', '.join(tasks)}; seeds {len(a)} vs {len(b)}"
    binary = np.isin(scores, (0.0, 1.0)).all()
    if binary and len(a) == len(b) == 1 and margin == 0:
        # Paired correctness of two runs: the exact McNemar test instead of the bootstrap.
        a_only, b_only = stats.discordant(a[0], b[0])
        if not higher:
            a_only, b_only = b_only, a_only
        c.p_for = stats.mcnemar_one_sided(a_only, b_only)
        c.p_against = stats.mcnemar_one_sided(b_only, a_only)
        c.note += f"; McNemar {a_only} vs {b_only} discordant"
    return c


def point(results: dict, base: dict) -> tuple[float, float] | None:
    """(tool gain, general drift) of one evaluation against the base model's; None if either
    measure is missing."""
    tool, base_tool = results.get("retention-tool"), base.get("retention-tool")
    drifts = [e["metrics"]["kl"] for t, e in results.items() if t.startswith("drift-")]
    if tool is None or base_tool is None or not drifts:
        return None
    gain = base_tool["metrics"]["nll"] - tool["metrics"]["nll"]
    return gain, sum(drifts) / len(drifts)


def snapshot_curve(out: Path, run: str, prefixes=("drift-",)) -> dict | None:
    """A run's snapshot curve: fractions, tool gains and pooled per-item drift (0 at the base)."""
    root = out / "eval-snapshots"
    base = root / "base" / "results.json"
    if not base.is_file() or not (root / run).is_dir():
        return None
    base_tasks = read_json(base)["tasks"]
    points = []
    for sub in sorted((root / run).iterdir()):
        if not (sub / "results.json").is_file() or not (sub / "fraction.json").is_file():
            continue
        p = point(read_json(sub / "results.json")["tasks"], base_tasks)
        pooled = pooled_runs([sub], prefixes)
        if p is None or pooled is None:
            return None
        points.append((read_json(sub / "fraction.json")["fraction"], p[0], pooled[0][0]))
    if not points or len({len(p[2]) for p in points}) != 1:
        return None
    points.sort(key=lambda p: p[0])
    zeros = np.zeros_like(points[0][2])
    return {
        "fractions": [0.0] + [p[0] for p in points],
        "gains": [0.0] + [p[1] for p in points],
        "items": [zeros] + [p[2] for p in points],
    }


def _at_equal_learning(out, config, claim, a, b, x_star, settings) -> stats.Comparison | None:
    """Drift of methods ``a`` and ``b`` where each run's tool gain first reaches ``x_star``."""
    sides, missed = [], []
    for method in (a, b):
        rows = []
        for run in config.run_names(method):
            curve = snapshot_curve(out, run)
            if curve is None:
                return None
            at = stats.at_equal_learning(curve["fractions"], curve["gains"], curve["items"], x_star)
            if at is None:
                missed.append(run)
            else:
                rows.append(at["items"])
        sides.append(rows)
    if missed:
        nan = float("nan")
        return stats.Comparison(
            claim, nan, nan, nan, 1.0, 1.0, nan, note=f"never reach x*: {', '.join(missed)}"
        )
    if len({len(r) for rows in sides for r in rows}) != 1:
        return None
    c = stats.compare_paired(
        claim, np.asarray(sides[0]), np.asarray(sides[1]), False, 0.0, settings["resamples"]
    )
    c.unit = "mean KL"
    c.note = f"at tool NLL drop {x_star:g}; seeds {len(sides[0])} vs {len(sides[1])}"
    return c


def method_comparisons(out: Path, config) -> list[stats.Comparison]:
    """Every claim the runs allow, with verdicts under one Holm correction."""
    settings = check_stats(getattr(config, "stats", {}) or {})
    runs = config.run_names
    rows: list[stats.Comparison | None] = []
    citis = [m for m in config.methods if config.method_of(m) == "citi"]
    for c in citis:
        if "lora" in config.methods:
            margin = settings["tool_margin"]
            claim = f"tool use of {c} comparable to lora's (at most {100 * margin:g} points below)"
            rows.append(
                _paired(out, claim, runs(c), runs("lora"), ("apibank-",), settings, True, margin)
            )
        for other in ("lora", "lora-dm", "ft"):
            if other in config.methods:
                claim = f"general drift of {c} < {other}'s"
                rows.append(
                    _paired(
                        out, claim, runs(c), runs(other), ("drift-",), settings, False, unit="KL"
                    )
                )
                if settings["x_star"] is not None:
                    claim += f", at equal tool learning (x* = {settings['x_star']:g})"
                    x_star = settings["x_star"]
                    rows.append(_at_equal_learning(out, config, claim, c, other, x_star, settings))
    if "ft" in config.methods and "lora" in config.methods:
        claim = "forgetting shows: ft drifts more than lora"
        rows.append(_paired(out, claim, runs("ft"), runs("lora"), ("drift-",), settings, unit="KL"))
    if "ft" in config.methods:
        for run in runs("ft"):
            claim = f"forgetting shows: {run} leaks tool calls into general answers"
            rows.append(_paired(out, claim, [run], ["base"], ("leak-tool",), settings))
    return stats.decide([r for r in rows if r is not None])


def row_text(c: stats.Comparison) -> dict:
    """A verdict-table row: the claim, its verdict and the numbers behind it."""
    if c.diff != c.diff:  # a comparison that could not be made
        return {"claim": c.claim, "verdict": c.verdict, "numbers": c.note}
    share = c.unit == ""
    scale, unit = (100.0, " points") if share else (1.0, f" {c.unit}")
    fmt = "{:+.1f}" if share else "{:+.4f}"
    low, high = fmt.format(scale * c.low), fmt.format(scale * c.high)
    detectable = fmt.format(scale * c.detectable).lstrip("+") + unit
    if c.detectable == 0:  # every item scored alike by both sides: nothing varies to test
        detectable = "nothing (no item differs)"
    numbers = (
        f"A − B {fmt.format(scale * c.diff)}{unit} [{low}, {high}]; p {c.p_for:.2g} for, "
        f"{c.p_against:.2g} against (before Holm); detectable {detectable}; {c.note}"
    )
    return {"claim": c.claim, "verdict": c.verdict, "numbers": numbers}
