"""The pilot's pre-registered go / no-go rule (docs/guides/pilot-preregistration.md).

Can tool fine-tuning cause measurable forgetting in this model at all? For each method of the
preset (FT and LoRA at several times the paper's learning rate), on its final evaluation:

- it *learned*: its tool gain (the base model's ``retention-tool`` NLL minus its own) is at
  least ``pilot.tool_gain`` (the `cpu` preset's FT gain, fixed before the pilot);
- it *forgot*: IFEval instruction-level loose accuracy or TriviaQA-MC accuracy fell by at least
  ``pilot.fall`` (a share: 0.05 = 5 points) against the base model, with the paired 95% interval
  of the change entirely below 0; or its ``leak-tool`` share reached ``pilot.leak``.

*Go* when some method learned and forgot; otherwise *no-go*. Each route is read at its own 95%
level, uncorrected: the pilot asks whether forgetting can be caused at all, and a false *go*
costs only the main experiment's compute, which then tests every claim under Holm.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from citi.errors import ConfigError
from citi.io import read_json
from citi.reproduce import stats
from citi.reproduce.comparisons import ifeval_instructions, item_scores

KEYS = ("tool_gain", "fall", "leak")


def check_pilot(settings: dict) -> dict:
    """The preset's ``pilot:`` section: all three thresholds, or nothing (not a pilot)."""
    if not settings:
        return {}
    if not isinstance(settings, dict) or set(settings) != set(KEYS):
        raise ConfigError(f"pilot: needs exactly {', '.join(KEYS)}")
    for key in KEYS:
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"pilot.{key}: a number >= 0, got {value!r}")
    if settings["fall"] >= 1 or settings["leak"] > 1:
        raise ConfigError("pilot.fall and pilot.leak are shares (0.05 = 5 points)")
    return dict(settings)


def _metric(run_dir: Path, task: str, name: str) -> float | None:
    path = run_dir / "tasks" / f"{task}.json"
    return read_json(path)["metrics"].get(name) if path.is_file() else None


def _fall(base: list[float] | None, tuned: list[float] | None, fall: float) -> dict | None:
    if base is None or tuned is None or len(base) != len(tuned):
        return None
    c = stats.compare_paired("tuned vs base", np.asarray(tuned), np.asarray(base))
    return {
        "change": c.diff,
        "low": c.low,
        "high": c.high,
        "items": len(base),
        "fell": bool(c.diff <= -fall and c.high < 0),
    }


def pilot_decision(out: Path, config) -> dict | None:
    """pilot.json's content: per method the three routes, and the decision."""
    rule = check_pilot(getattr(config, "pilot", {}) or {})
    if not rule:
        return None
    base = out / "eval" / "base"
    base_nll = _metric(base, "retention-tool", "nll")
    methods = {}
    for method in config.methods:
        run = out / "eval" / config.run_names(method)[0]
        nll = _metric(run, "retention-tool", "nll")
        gain = None if nll is None or base_nll is None else base_nll - nll
        ifeval = _fall(ifeval_instructions(base), ifeval_instructions(run), rule["fall"])
        trivia = _fall(
            item_scores(base, "triviaqa-mc"), item_scores(run, "triviaqa-mc"), rule["fall"]
        )
        leak = _metric(run, "leak-tool", "leak")
        learned = gain is not None and gain >= rule["tool_gain"]
        forgot = any(f is not None and f["fell"] for f in (ifeval, trivia)) or (
            leak is not None and leak >= rule["leak"]
        )
        methods[method] = {
            "tool_gain": gain,
            "learned": learned,
            "ifeval_inst_loose": ifeval,
            "triviaqa_mc": trivia,
            "leak": leak,
            "forgot": forgot,
            "go": learned and forgot,
        }
    go = any(m["go"] for m in methods.values())
    return {"decision": "go" if go else "no-go", "rule": rule, "methods": methods}


def _change(f: dict | None) -> str:
    if f is None:
        return "-"
    mark = " **fell**" if f["fell"] else ""
    return f"{100 * f['change']:+.1f} [{100 * f['low']:+.1f}, {100 * f['high']:+.1f}]{mark}"


def pilot_section(config, out: Path, runs, tasks, steps) -> list[str]:
    """The report's pilot section: the decision first, then the numbers behind it."""
    path = out / "analysis" / "pilot.json"
    if not path.is_file():
        return []
    p = read_json(path)
    rule = p["rule"]
    parts = [
        f"## Pilot decision: **{p['decision']}**",
        "",
        f"Rule (docs/guides/pilot-preregistration.md, fixed before the run): go when a method "
        f"keeps a tool NLL gain of at least {rule['tool_gain']:g} and IFEval (instructions, "
        f"loose) or TriviaQA-MC falls by at least {100 * rule['fall']:g} points with its paired "
        f"95% interval below 0, or its leak reaches {100 * rule['leak']:g}%.",
        "",
        "| method | tool gain | learned | IFEval change, points | TriviaQA-MC change, points "
        "| leak % | go |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method, m in p["methods"].items():
        gain = "-" if m["tool_gain"] is None else f"{m['tool_gain']:.3f}"
        leak = "-" if m["leak"] is None else f"{100 * m['leak']:.1f}"
        parts.append(
            f"| {method} | {gain} | {'yes' if m['learned'] else 'no'} | "
            f"{_change(m['ifeval_inst_loose'])} | {_change(m['triviaqa_mc'])} | {leak} | "
            f"{'yes' if m['go'] else 'no'} |"
        )
    return [*parts, ""]
