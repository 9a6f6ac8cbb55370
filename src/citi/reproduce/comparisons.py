"""The report's method comparisons, tested on paired per-item scores (citi.reproduce.stats).

The claims, fixed here before any result is read:

- tool use of each CITI-like method is *comparable* to LoRA's: API-Bank correctness (the
  ``apibank-*`` tasks pooled, items paired) no more than ``stats.tool_margin`` below (a
  non-inferiority test; 0.05 = 5 points unless the preset says otherwise);
- it keeps more general ability than LoRA, LoRA+DM and FT, on each measure of
  ``stats.general`` (default: less drift, the per-item KL of the ``drift-*`` tasks pooled; the
  main experiment names measures above the floor: ``ifeval-inst``, IFEval per instruction
  (loose), and ``triviaqa-mc``);
- forgetting shows: FT is worse than LoRA on each of those measures, and each FT run leaks tool
  calls into general answers more often than the base model (``leak-tool``);
- with ``stats.x_star`` set (a drop of the ``stats.x_task`` tool NLL fixed before the runs), the
  general-ability claims again at equal tool learning: each run's per-item scores where its
  snapshot curve first reaches x* (the snapshot evaluation must score those measures). Or with
  ``stats.x_star_share`` s, a rule fixed before the runs instead of a number: x* is s times the
  smallest method-mean final tool gain (it reads tool learning only, never a general measure).

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

DEFAULTS = {
    "tool_margin": 0.05,
    "x_star": None,
    "x_star_share": None,  # x* = this share of the smallest method-mean final tool gain
    "resamples": 2000,
    # The general-ability measures of the claims: a task-name prefix (``drift-`` pools every
    # drift task) or ``ifeval-inst`` (IFEval per instruction, loose); one claim family each.
    "general": ["drift-"],
    # The tool-learning axis of the equal-learning comparisons: a task whose primary metric is
    # an NLL (retention-tool, or retention-tool-args, which does not saturate on format).
    "x_task": "retention-tool",
}
IFEVAL_INST = "ifeval-inst"
# The families of claims (Comparison.kind), as the pre-registered reading names them.
TOOL_USE, GENERAL, EQUAL_LEARNING = "tool-use", "general", "general-at-equal-learning"
FORGETTING, LEAK = "forgetting", "leak"
SUPPORTED, CONTRADICTED, UNDECIDED = "supported", "contradicted", "undecided"


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
    share = values["x_star_share"]
    if share is not None:
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
            raise ConfigError(f"stats.x_star_share: a share in (0, 1], got {share!r}")
        if x_star is not None:
            raise ConfigError("stats: set x_star (a number) or x_star_share (a rule), not both")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 100:
        raise ConfigError(f"stats.resamples: an integer >= 100, got {resamples!r}")
    general = values["general"]
    if (
        not isinstance(general, list)
        or not general
        or not all(isinstance(g, str) and g for g in general)
    ):
        raise ConfigError(
            f"stats.general: a list of task prefixes or {IFEVAL_INST}, got {general!r}"
        )
    if not isinstance(values["x_task"], str) or not values["x_task"]:
        raise ConfigError(f"stats.x_task: a task name, got {values['x_task']!r}")
    return values


def ifeval_instructions(run_dir: Path) -> list[float] | None:
    """IFEval per instruction (loose), flattened in prompt order: the same items for every run."""
    path = run_dir / "predictions" / "ifeval.jsonl"
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    return [float(x) for line in lines for x in json.loads(line)["scores"]["inst_loose"]]


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
        per = {}
        for t in common:
            scores = item_scores(d, t)
            if scores is None:
                return None
            per[t] = scores
        rows.append(stats.pooled(per))
    if len({len(r) for r in rows}) != 1:
        return None
    return np.asarray(rows), sorted(common)


def measure_runs(run_dirs: list[Path], measure) -> tuple[np.ndarray, list, bool, str] | None:
    """[runs, items] of one measure (a tuple of task prefixes, or ``ifeval-inst``), the tasks
    it pooled, whether higher is better (the first task's primary metric) and its unit ("" for
    a share, else the metric's: "kl", "nll")."""
    from citi.evaluation.metrics import metric_info

    if measure == IFEVAL_INST:
        found = [ifeval_instructions(d) for d in run_dirs]
        rows = [r for r in found if r is not None]
        if not rows or len(rows) != len(found) or len({len(r) for r in rows}) != 1:
            return None
        return np.asarray(rows), ["ifeval"], True, ""
    prefixes = (measure,) if isinstance(measure, str) else tuple(measure)
    pooled = pooled_runs(run_dirs, prefixes)
    if pooled is None:
        return None
    scores, tasks = pooled
    info = metric_info(read_json(run_dirs[0] / "tasks" / f"{tasks[0]}.json")["primary"])
    unit = "" if info.unit == "percent" else info.unit.upper()
    return scores, tasks, info.higher_is_better, unit


def _paired(
    out, claim, runs_a, runs_b, prefixes, settings, higher=True, margin=0.0, unit=None
) -> stats.Comparison | None:
    """The claim "A beats B" (``higher``: A's scores above B's) on one measure, or "A no
    worse than B by more than ``margin``"; None when the runs lack common items."""
    a_dirs = [out / "eval" / r for r in runs_a]
    b_dirs = [out / "eval" / r for r in runs_b]
    measured = measure_runs(a_dirs + b_dirs, prefixes)
    if measured is None:
        return None
    scores, tasks, _, own_unit = measured
    unit = own_unit if unit is None else unit
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


def tool_gain(results: dict, base: dict, x_task: str = "retention-tool") -> float | None:
    """The drop of the ``x_task`` NLL (its primary metric) against the base model's."""
    tool, base_tool = results.get(x_task), base.get(x_task)
    if tool is None or base_tool is None:
        return None
    key = tool.get("primary", "nll")
    return base_tool["metrics"][key] - tool["metrics"][key]


def point(results: dict, base: dict) -> tuple[float, float] | None:
    """(tool gain, general drift) of one evaluation against the base model's; None if either
    measure is missing."""
    gain = tool_gain(results, base)
    drifts = [e["metrics"]["kl"] for t, e in results.items() if t.startswith("drift-")]
    if gain is None or not drifts:
        return None
    return gain, sum(drifts) / len(drifts)


def snapshot_curve(
    out: Path, run: str, measure="drift-", x_task: str = "retention-tool"
) -> dict | None:
    """A run's snapshot curve: fractions, tool gains (``x_task``) and the per-item scores of
    ``measure``, starting at the base model (a KL is 0 there by definition)."""
    root = out / "eval-snapshots"
    base = root / "base" / "results.json"
    if not base.is_file() or not (root / run).is_dir():
        return None
    base_tasks = read_json(base)["tasks"]
    points = []
    for sub in sorted((root / run).iterdir()):
        if not (sub / "results.json").is_file() or not (sub / "fraction.json").is_file():
            continue
        gain = tool_gain(read_json(sub / "results.json")["tasks"], base_tasks, x_task)
        measured = measure_runs([sub], measure)
        if gain is None or measured is None:
            return None
        points.append((read_json(sub / "fraction.json")["fraction"], gain, measured[0][0]))
    if not points or measured is None or len({len(p[2]) for p in points}) != 1:
        return None  # (measured: the last run's, set whenever points is)
    points.sort(key=lambda p: p[0])
    at_base = measure_runs([root / "base"], measure)
    if at_base is not None and len(at_base[0][0]) == len(points[0][2]):
        start = at_base[0][0]
    elif measured[3] == "KL":
        start = np.zeros_like(points[0][2])
    else:
        return None
    return {
        "fractions": [0.0] + [p[0] for p in points],
        "gains": [0.0] + [p[1] for p in points],
        "items": [start] + [p[2] for p in points],
        "higher_is_better": measured[2],
        "unit": measured[3],
    }


def _at_equal_learning(
    out, config, claim, a, b, x_star, settings, measure="drift-"
) -> stats.Comparison | None:
    """General ability (``measure``) of methods ``a`` and ``b`` where each run's tool gain
    first reaches ``x_star``: the claim that ``a`` keeps more of it."""
    sides, missed, direction = [], [], None
    for method in (a, b):
        rows = []
        for run in config.run_names(method):
            curve = snapshot_curve(out, run, measure, settings["x_task"])
            if curve is None:
                return None
            direction = (curve["higher_is_better"], curve["unit"])
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
    if direction is None or len({len(r) for rows in sides for r in rows}) != 1:
        return None
    higher, unit = direction
    c = stats.compare_paired(
        claim, np.asarray(sides[0]), np.asarray(sides[1]), higher, 0.0, settings["resamples"]
    )
    c.unit = f"mean {unit}" if unit else ""
    c.note = (
        f"at {settings['x_task']} drop {x_star:g}; {len(sides[0][0])} items; "
        f"seeds {len(sides[0])} vs {len(sides[1])}"
    )
    return c


def _direction(out: Path, config, measure) -> tuple[bool, str] | None:
    """(higher is better, label) of a general measure, read off the first evaluation that
    scored it: the base model's, a run's, or a training snapshot's."""
    first = [config.run_names(m)[0] for m in config.methods]
    dirs = [out / "eval" / r for r in ["base", *first]]
    for run in first:
        folder = out / "eval-snapshots" / run
        dirs += sorted(folder.iterdir()) if folder.is_dir() else []
    for d in dirs:
        measured = measure_runs([d], measure)
        if measured is not None:
            return measured[2], "general drift" if measure == "drift-" else measure
    return None


def final_gains(out: Path, config, x_task: str) -> dict[str, float]:
    """Each method's mean final tool gain (``x_task`` drop against the base) over its seeds;
    methods with a run not evaluated are left out."""
    base_path = out / "eval" / "base" / "results.json"
    if not base_path.is_file():
        return {}
    base = read_json(base_path)["tasks"]
    gains = {}
    for method in config.methods:
        values = []
        for run in config.run_names(method):
            path = out / "eval" / run / "results.json"
            gain = tool_gain(read_json(path)["tasks"], base, x_task) if path.is_file() else None
            values.append(gain)
        known = [v for v in values if v is not None]
        if values and len(known) == len(values):
            gains[method] = sum(known) / len(known)
    return gains


def shared_x_star(out: Path, config, settings) -> float | None:
    """x* by the pre-registered rule: ``x_star_share`` times the smallest method-mean final
    gain; None when a method has none or some method did not learn at all (gain <= 0)."""
    gains = final_gains(out, config, settings["x_task"])
    if len(gains) != len(config.methods) or min(gains.values()) <= 0:
        return None
    return settings["x_star_share"] * min(gains.values())


def _tagged(c: stats.Comparison | None, kind: str, subject: str, against: str):
    if c is not None:
        c.kind, c.subject, c.against = kind, subject, against
    return c


def method_comparisons(out: Path, config) -> list[stats.Comparison]:
    """Every claim the runs allow, with verdicts under one Holm correction."""
    settings = check_stats(getattr(config, "stats", {}) or {})
    runs = config.run_names
    rows: list[stats.Comparison | None] = []
    citis = [m for m in config.methods if config.method_of(m) == "citi"]
    measures = {m: d for m in settings["general"] if (d := _direction(out, config, m))}
    x_star = settings["x_star"]
    if settings["x_star_share"] is not None:
        x_star = shared_x_star(out, config, settings)
    for c in citis:
        if "lora" in config.methods:
            margin = settings["tool_margin"]
            claim = f"tool use of {c} comparable to lora's (at most {100 * margin:g} points below)"
            row = _paired(out, claim, runs(c), runs("lora"), ("apibank-",), settings, True, margin)
            rows.append(_tagged(row, TOOL_USE, c, "lora"))
        for other in ("lora", "lora-dm", "ft"):
            if other not in config.methods:
                continue
            for measure, (higher, label) in measures.items():
                claim = f"{label} of {c} {'>' if higher else '<'} {other}'s"
                row = _paired(out, claim, runs(c), runs(other), measure, settings, higher)
                rows.append(_tagged(row, GENERAL, c, other))
                if x_star is not None:
                    claim += f", at equal tool learning (x* = {x_star:g})"
                    row = _at_equal_learning(
                        out, config, claim, c, other, x_star, settings, measure
                    )
                    rows.append(_tagged(row, EQUAL_LEARNING, c, other))
                elif settings["x_star_share"] is not None:  # the rule gave no x*: say so
                    nan = float("nan")
                    claim += ", at equal tool learning"
                    note = "x* undefined: a method has no final tool gain above 0"
                    row = stats.Comparison(claim, nan, nan, nan, 1.0, 1.0, nan, note=note)
                    rows.append(_tagged(row, EQUAL_LEARNING, c, other))
    if "ft" in config.methods and "lora" in config.methods:
        for measure, (higher, label) in measures.items():
            claim = (
                "forgetting shows: ft drifts more than lora"
                if measure == "drift-"
                else f"forgetting shows: ft below lora on {label}"
            )
            row = _paired(out, claim, runs("ft"), runs("lora"), measure, settings, not higher)
            rows.append(_tagged(row, FORGETTING, "ft", "lora"))
    if "ft" in config.methods:
        for run in runs("ft"):
            claim = f"forgetting shows: {run} leaks tool calls into general answers"
            row = _paired(out, claim, [run], ["base"], ("leak-tool",), settings, unit="")
            rows.append(_tagged(row, LEAK, run, "base"))
    return stats.decide([r for r in rows if r is not None])


def paper_claim(rows: list[stats.Comparison]) -> list[dict]:
    """The paper's claim, read off decided rows by the rule of main-preregistration.md (fixed
    before any run), once per CITI-like method that has claims at equal tool learning:

    - *supported* when its tool use is comparable to LoRA's and, against every comparator, at
      least one general-ability claim at equal tool learning holds and none does not hold;
    - *contradicted* when comparable tool use does not hold, or a general-ability claim at
      equal tool learning does not hold;
    - *undecided* otherwise, naming the claims left inconclusive with the smallest effect each
      could have detected.

    ``forgetting_shown`` is False when "forgetting shows" (FT below LoRA) holds on no general
    measure: then the experiment could not show forgetting, whatever the other rows say.
    Presets without equal-learning claims (no ``stats.x_star`` or ``x_star_share``) get none.
    """
    forgetting = [r for r in rows if r.kind == FORGETTING]
    shown = any(r.verdict == stats.HOLDS for r in forgetting) if forgetting else None
    readings = []
    for method in dict.fromkeys(r.subject for r in rows if r.kind == EQUAL_LEARNING):
        equal = [r for r in rows if r.kind == EQUAL_LEARNING and r.subject == method]
        tool = [r for r in rows if r.kind == TOOL_USE and r.subject == method]
        comparators = list(dict.fromkeys(r.against for r in equal))
        failed = [r for r in tool + equal if r.verdict == stats.FAILS]
        unsupported = [
            b
            for b in comparators
            if not any(r.verdict == stats.HOLDS for r in equal if r.against == b)
        ]
        if failed:
            verdict, why = CONTRADICTED, [f"does not hold: {r.claim}" for r in failed]
        elif not tool:
            verdict, why = UNDECIDED, ["no comparison of tool use with lora"]
        elif tool[0].verdict == stats.HOLDS and not unsupported:
            verdict, why = (
                SUPPORTED,
                [f"holds: {r.claim}" for r in tool + equal if r.verdict == stats.HOLDS],
            )
        else:
            verdict, why = UNDECIDED, []
            if tool[0].verdict != stats.HOLDS:
                why.append(f"inconclusive: {tool[0].claim}")
            why += [f"no claim at equal tool learning holds against {b}" for b in unsupported]
        open_rows = [r for r in tool + equal if r.verdict == stats.INCONCLUSIVE]
        readings.append(
            {
                "method": method,
                "verdict": verdict,
                "reasons": why,
                "forgetting_shown": shown,
                "detectable": {r.claim: _detectable_text(r) for r in open_rows},
            }
        )
    return readings


def _detectable_text(c: stats.Comparison) -> str:
    """The smallest effect a row's test could detect, in the row's units (or why none)."""
    if c.detectable != c.detectable:  # a comparison that could not be made
        return c.note
    if c.detectable == 0:  # every item scored alike by both sides: nothing varies to test
        return "nothing (no item differs)"
    share = c.unit == ""
    value = f"{100 * c.detectable:.1f}" if share else f"{c.detectable:.4f}"
    return value + (" points" if share else f" {c.unit}")


def paper_claim_text(readings: list[dict]) -> list[str]:
    """Markdown lines of the paper's-claim reading (empty without equal-learning claims)."""
    lines = []
    for r in readings:
        lines.append(
            f"- **{r['method']}: the paper's claim is {r['verdict']}** ({'; '.join(r['reasons'])})."
        )
        if r["detectable"]:
            shown = "; ".join(f"{claim}: {d}" for claim, d in r["detectable"].items())
            lines.append(
                f"  Inconclusive claims and the smallest effect each could detect: {shown}."
            )
        if r["forgetting_shown"] is False:
            lines.append(
                "  Forgetting did not show (FT was not reliably below LoRA on any general "
                "measure): this experiment could not show forgetting, whatever the other rows say."
            )
    return lines


def row_text(c: stats.Comparison) -> dict:
    """A verdict-table row: the claim, its verdict and the numbers behind it."""
    if c.diff != c.diff:  # a comparison that could not be made
        return {"claim": c.claim, "verdict": c.verdict, "numbers": c.note}
    share = c.unit == ""
    scale, unit = (100.0, " points") if share else (1.0, f" {c.unit}")
    fmt = "{:+.1f}" if share else "{:+.4f}"
    low, high = fmt.format(scale * c.low), fmt.format(scale * c.high)
    numbers = (
        f"A − B {fmt.format(scale * c.diff)}{unit} [{low}, {high}]; p {c.p_for:.2g} for, "
        f"{c.p_against:.2g} against (before Holm); detectable {_detectable_text(c)}; {c.note}"
    )
    return {"claim": c.claim, "verdict": c.verdict, "numbers": numbers}
