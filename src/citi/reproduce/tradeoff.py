"""The report's headline: tool gain against general drift per method, and a verdict per claim.

Tool gain = the base model's API-Bank tool NLL (``retention-tool``) minus the tuned model's;
general drift = the mean over the ``drift-*`` tasks of KL(base ‖ tuned) on the base model's own
answers. One line per method through its training snapshots (the same cheap subsets at every
point, the final adapter included), seeds averaged with min-max error bars.

Verdicts follow rules fixed here, before any result is seen, and printed with the numbers:
- method comparisons (tool use, drift, leak, and drift at equal tool learning) are paired tests
  on per-item scores with one Holm correction: see citi.reproduce.comparisons and
  citi.reproduce.stats; each holds, does not hold or is inconclusive, with the smallest effect
  it could have detected;
- routing holds when the last analysed router gives tool tokens at least 0.02 less null-expert
  mass than non-tool tokens, and does not hold when it gives them as much or more;
- importance overlap holds when the high group's mean Jaccard exceeds the random expectation by
  0.05, and does not hold when it does not exceed it at all;
- the co-directional shift holds when the mean cosine over layers, modules and abilities after FT
  is above 0.2, and does not hold when it is below 0.
"""

from __future__ import annotations

from pathlib import Path

from citi.io import read_json, write_figure_atomic, write_json_atomic
from citi.reproduce.comparisons import method_comparisons, paper_claim, point, row_text
from citi.reproduce.pilot import pilot_decision
from citi.reproduce.stats import FAILS, HOLDS
from citi.reproduce.stats import INCONCLUSIVE as UNSURE


def _tasks(path: Path) -> dict:
    return read_json(path)["tasks"] if path.is_file() else {}


def curves(out: Path, config) -> dict:
    """method -> {"fractions": [...], "gain": [[per seed]...], "drift": [[per seed]...]}."""
    result = {}
    snap_root = out / "eval-snapshots"
    base = _tasks(snap_root / "base" / "results.json")
    if not base:
        return {}
    for method in config.methods:
        per_fraction: dict[float, list[tuple[float, float]]] = {0.0: []}
        for run in config.run_names(method):
            if not (snap_root / run).is_dir():
                continue
            per_fraction[0.0].append((0.0, 0.0))
            for sub in sorted((snap_root / run).iterdir()):
                if not (sub / "results.json").is_file():
                    continue
                fraction = read_json(sub / "fraction.json")["fraction"]
                p = point(_tasks(sub / "results.json"), base)
                if p is not None:
                    per_fraction.setdefault(fraction, []).append(p)
        if len(per_fraction) > 1:
            fractions = sorted(per_fraction)
            result[method] = {
                "fractions": fractions,
                "gain": [[p[0] for p in per_fraction[f]] for f in fractions],
                "drift": [[p[1] for p in per_fraction[f]] for f in fractions],
            }
    return result


def plot_tradeoff(data: dict, final: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6), constrained_layout=True)
    for method, c in data.items():
        xs = [sum(v) / len(v) for v in c["gain"]]
        ys = [sum(v) / len(v) for v in c["drift"]]
        xerr = [
            [x - min(v) for x, v in zip(xs, c["gain"], strict=True)],
            [max(v) - x for x, v in zip(xs, c["gain"], strict=True)],
        ]
        yerr = [
            [y - min(v) for y, v in zip(ys, c["drift"], strict=True)],
            [max(v) - y for y, v in zip(ys, c["drift"], strict=True)],
        ]
        ax.errorbar(xs, ys, xerr=xerr, yerr=yerr, marker="o", capsize=3, label=method)
    for method, (x, y) in final.items():
        ax.scatter([x], [y], marker="*", s=120, color="black", zorder=3)
        ax.annotate(method, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("tool gain: API-Bank tool NLL drop vs base (higher is better)")
    ax.set_ylabel("general drift: mean KL(base || tuned) (lower is better)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    write_figure_atomic(path, fig, dpi=110)
    plt.close(fig)


def _final_values(out: Path, config, method: str) -> tuple[list[float], list[float]]:
    base = _tasks(out / "eval" / "base" / "results.json")
    gains, drifts = [], []
    for run in config.run_names(method):
        p = point(_tasks(out / "eval" / run / "results.json"), base)
        if p is not None:
            gains.append(p[0])
            drifts.append(p[1])
    return gains, drifts


def verdicts(out: Path, config, comparisons=None) -> list[dict]:
    """One row per claim: claim, verdict, the numbers behind it (``comparisons``: the method
    comparisons when already made)."""
    if comparisons is None:
        comparisons = method_comparisons(out, config)
    rows = [row_text(c) for c in comparisons]
    router = out / "analysis" / "router.json"
    if router.is_file():
        dist = read_json(router)
        last = list(dist)[-1]
        tool, other = dist[last]["tool"][0], dist[last]["non-tool"][0]
        v = HOLDS if tool <= other - 0.02 else FAILS if tool >= other else UNSURE
        rows.append(
            {
                "claim": "routing sends tool tokens to the experts (null-expert mass, last router)",
                "verdict": v,
                "numbers": f"{last}: tool {tool:.3f} vs non-tool {other:.3f}",
            }
        )
    jac = out / "analysis" / "jaccard.json"
    if jac.is_file():
        high = read_json(jac)["groups"]["high"]
        m, e = high["mean_offdiagonal"], high["expected_random"]
        v = HOLDS if m > e + 0.05 else FAILS if m <= e else UNSURE
        rows.append(
            {
                "claim": "high-importance components are shared across abilities (Jaccard)",
                "verdict": v,
                "numbers": f"{m:.3f} vs {e:.3f} random",
            }
        )
    icc = out / "analysis" / "icc-ft" / "icc.json"
    if icc.is_file():
        tuned = read_json(icc)["tuned"]
        values = [c for per in tuned.values() for cos in per.values() for c in cos]
        mean = sum(values) / len(values)
        v = HOLDS if mean > 0.2 else FAILS if mean < 0 else UNSURE
        rows.append(
            {
                "claim": "tool tuning shifts general inputs co-directionally (ICC cosine, ft)",
                "verdict": v,
                "numbers": f"mean cosine {mean:.3f}",
            }
        )
    return rows


def write_tradeoff(out: Path, config) -> dict:
    """tradeoff.json, tradeoff.png and the verdicts under OUT/analysis/."""
    data = curves(out, config)
    final = {}
    for m in config.methods:
        gains, drifts = _final_values(out, config, m)
        if gains:
            final[m] = (sum(gains) / len(gains), sum(drifts) / len(drifts))
    comparisons = method_comparisons(out, config)
    rows = verdicts(out, config, comparisons)
    result = {"curves": data, "final": final, "verdicts": rows}
    readings = paper_claim(comparisons)
    if readings:  # presets with claims at equal tool learning (the main experiment)
        result["paper_claim"] = readings
    analysis = out / "analysis"
    write_json_atomic(analysis / "tradeoff.json", result)
    decision = pilot_decision(out, config)
    if decision is not None:
        write_json_atomic(analysis / "pilot.json", decision)
    if data or final:
        title = "learning vs forgetting" + ("" if config.decisive else " (too small to decide)")
        plot_tradeoff(data, final, analysis / "tradeoff.png", title)
    return result


def verdict_table(result: dict, decisive: bool) -> str:
    lines = ["| claim | verdict | numbers |", "| --- | --- | --- |"]
    for r in result["verdicts"]:
        verdict = r["verdict"] if decisive else f"{r['verdict']} (too small to decide)"
        lines.append(f"| {r['claim']} | {verdict} | {r['numbers']} |")
    return "\n".join(lines)
