"""The report's claims from per-item scores written the way `citi eval` writes them."""

import json

import numpy as np
import pytest

from citi.errors import ConfigError
from citi.reproduce.comparisons import check_stats, method_comparisons, row_text
from citi.reproduce.preset import ReproduceConfig
from citi.reproduce.tradeoff import verdicts


def write_task(run_dir, task, primary, key, values):
    (run_dir / "tasks").mkdir(parents=True, exist_ok=True)
    (run_dir / "predictions").mkdir(parents=True, exist_ok=True)
    (run_dir / "tasks" / f"{task}.json").write_text(json.dumps({"primary": primary}))
    lines = [json.dumps({"scores": {key: float(v)}}) for v in values]
    (run_dir / "predictions" / f"{task}.jsonl").write_text("\n".join(lines) + "\n")


def write_run(out, run, correct, kl, leak):
    d = out / "eval" / run
    write_task(d, "apibank-l3", "correctness", "correct", correct)
    write_task(d, "drift-math", "kl", "kl", kl)
    write_task(d, "leak-tool", "leak", "leak", leak)


@pytest.fixture
def report(tmp_path):
    rng = np.random.default_rng(0)
    both = [1] * 10 + [0] * 40
    ft = [1] * 13 + [0] + both  # FT right on 13 items LoRA gets wrong, wrong on 1 it gets right
    lora = [0] * 13 + [1] + both
    hard = rng.exponential(0.05, 64)  # per-prompt KL, skewed
    write_run(tmp_path, "base", ft, np.zeros(64), [0] * 64)
    write_run(tmp_path, "ft", ft, hard + 0.2, [1] * 12 + [0] * 52)
    write_run(tmp_path, "lora", lora, hard + 0.01, [0] * 64)
    write_run(tmp_path, "citi", lora, hard + 0.012, [0] * 64)
    return tmp_path


def test_claims_get_paired_verdicts_with_one_holm_correction(report):
    config = ReproduceConfig(methods=["ft", "lora", "citi"], analyses=[])
    rows = {c.claim: c for c in method_comparisons(report, config)}
    tool = rows["tool use of citi comparable to lora's (at most 5 points below)"]
    assert tool.verdict == "holds" and tool.diff == 0  # the same answers: comparable
    assert rows["general drift of citi < ft's"].verdict == "holds"
    assert rows["forgetting shows: ft drifts more than lora"].verdict == "holds"
    assert rows["forgetting shows: ft leaks tool calls into general answers"].verdict == "holds"
    # 0.002 more KL on every prompt: reliably more drift than LoRA, so "less" does not hold.
    assert rows["general drift of citi < lora's"].verdict == "does not hold"
    text = {r["claim"]: r for r in verdicts(report, config)}
    assert "detectable" in text["general drift of citi < ft's"]["numbers"]


def test_paired_correctness_of_two_runs_uses_exact_mcnemar(report):
    from citi.reproduce.comparisons import _paired

    c = _paired(report, "ft > lora on tools", ["ft"], ["lora"], ("apibank-",), check_stats({}))
    assert c.p_for == pytest.approx(15 / 2**14)  # one-sided: half the two-sided 0.0018
    assert "McNemar 13 vs 1 discordant" in c.note
    assert row_text(c)["numbers"].startswith("A − B +18.8 points")


def test_runs_scored_on_different_items_are_not_compared(report):
    write_task(report / "eval" / "lora", "drift-math", "kl", "kl", [0.1] * 10)
    config = ReproduceConfig(methods=["ft", "lora", "citi"], analyses=[])
    claims = {c.claim for c in method_comparisons(report, config)}
    assert "forgetting shows: ft drifts more than lora" not in claims
    assert "general drift of citi < ft's" in claims


def test_equal_learning_reads_the_snapshot_curves(tmp_path):
    def snap(run, sub, fraction, nll, kl):
        d = tmp_path / "eval-snapshots" / run / sub
        write_task(d, "drift-math", "kl", "kl", kl)
        tasks = {"retention-tool": {"metrics": {"nll": nll}}, "drift-math": {"metrics": {"kl": 0}}}
        (d / "results.json").write_text(json.dumps({"tasks": tasks}))
        (d / "fraction.json").write_text(json.dumps({"fraction": fraction}))

    base = tmp_path / "eval-snapshots" / "base"
    base.mkdir(parents=True)
    base_tasks = {"retention-tool": {"metrics": {"nll": 2.0}}, "drift-math": {"metrics": {}}}
    (base / "results.json").write_text(json.dumps({"tasks": base_tasks}))
    kl = np.linspace(0.1, 0.3, 40)
    # FT reaches a gain of 0.5 at half of training, CITI only at the end, with less drift there.
    snap("ft", "a", 0.5, 1.5, kl)
    snap("ft", "final", 1.0, 1.0, 2 * kl)
    snap("citi", "a", 0.5, 1.8, kl / 10)
    snap("citi", "final", 1.0, 1.5, kl / 2)
    config = ReproduceConfig(methods=["ft", "citi"], analyses=[], stats={"x_star": 0.5})
    rows = {c.claim: c for c in method_comparisons(tmp_path, config)}
    c = rows["general drift of citi < ft's, at equal tool learning (x* = 0.5)"]
    assert c.diff == pytest.approx(np.mean(kl / 2) - np.mean(kl)) and c.verdict == "holds"
    config = ReproduceConfig(methods=["ft", "citi"], analyses=[], stats={"x_star": 1.2})
    rows = {c.claim: c for c in method_comparisons(tmp_path, config)}
    c = rows["general drift of citi < ft's, at equal tool learning (x* = 1.2)"]
    assert c.verdict == "inconclusive" and "never reach x*: citi, ft" in c.note


@pytest.mark.parametrize(
    "stats, needle",
    [
        ({"margin": 0.1}, "unknown key(s) margin"),
        ({"tool_margin": 5}, "stats.tool_margin"),
        ({"x_star": "high"}, "stats.x_star"),
        ({"resamples": 10}, "stats.resamples"),
    ],
)
def test_bad_stats_settings_name_the_key(stats, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        ReproduceConfig(methods=["ft", "lora"], analyses=[], stats=stats)


def write_ifeval(run_dir, per_prompt):
    (run_dir / "tasks").mkdir(parents=True, exist_ok=True)
    (run_dir / "predictions").mkdir(parents=True, exist_ok=True)
    (run_dir / "tasks" / "ifeval.json").write_text(json.dumps({"primary": "prompt_level_strict"}))
    lines = [json.dumps({"scores": {"inst_loose": [float(x) for x in p]}}) for p in per_prompt]
    (run_dir / "predictions" / "ifeval.jsonl").write_text("\n".join(lines) + "\n")


MAIN_STATS = {"general": ["ifeval-inst", "triviaqa-mc"], "x_task": "retention-tool-args"}


def test_main_claims_on_measures_above_the_floor_with_seeds(tmp_path):
    # 3 seeds per method on 200 TriviaQA-MC items and 60 prompts x 2 IFEval instructions.
    # FT forgets 40 TriviaQA items on every seed; CITI and LoRA answer exactly like the base.
    rng = np.random.default_rng(1)
    trivia = (rng.random(200) < 0.5).astype(float)
    right = np.flatnonzero(trivia)[:40]
    forgot = trivia.copy()
    forgot[right] = 0
    ifeval = (rng.random((60, 2)) < 0.6).astype(float)
    config = ReproduceConfig(
        methods=["ft", "lora", "citi"], seeds=[1, 2, 3], analyses=[], stats=MAIN_STATS
    )
    for run in ["base", *(r for m in config.methods for r in config.run_names(m))]:
        d = tmp_path / "eval" / run
        write_task(
            d, "triviaqa-mc", "accuracy", "correct", forgot if run.startswith("ft") else trivia
        )
        write_ifeval(d, ifeval)
    rows = {c.claim: c for c in method_comparisons(tmp_path, config)}
    c = rows["triviaqa-mc of citi > ft's"]
    assert c.diff == pytest.approx(40 / 200) and c.verdict == "holds"
    assert rows["forgetting shows: ft below lora on triviaqa-mc"].verdict == "holds"
    # No difference anywhere else: nothing can be concluded, and nothing varies to detect it.
    same = rows["ifeval-inst of citi > lora's"]
    assert same.diff == 0 and same.verdict == "inconclusive"
    assert "seeds 3 vs 3" in same.note
    assert not any("drift" in claim for claim in rows)  # drift is a diagnostic here


def test_main_claims_at_equal_argument_nll_gain(tmp_path):
    """Each run read where its retention-tool-args gain first reaches x* = 0.4: FT at a
    quarter of training (gain 0.8 at 0.5), CITI half-way between its 0.5 and final points."""
    items = 100
    base_items = np.ones(items)

    def snap(run, sub, fraction, arg_nll, correct):
        d = tmp_path / "eval-snapshots" / run / sub
        write_task(d, "triviaqa-mc", "accuracy", "correct", correct)
        tasks = {"retention-tool-args": {"primary": "arg_nll", "metrics": {"arg_nll": arg_nll}}}
        (d / "results.json").write_text(json.dumps({"tasks": tasks}))
        (d / "fraction.json").write_text(json.dumps({"fraction": fraction}))

    base = tmp_path / "eval-snapshots" / "base"
    write_task(base, "triviaqa-mc", "accuracy", "correct", base_items)
    base_tasks = {"retention-tool-args": {"primary": "arg_nll", "metrics": {"arg_nll": 3.0}}}
    (base / "results.json").write_text(json.dumps({"tasks": base_tasks}))
    ft_half = np.r_[np.zeros(60), np.ones(40)]  # FT has lost 60 items by half-way
    snap("ft", "a", 0.5, 2.2, ft_half)
    snap("ft", "final", 1.0, 1.5, np.zeros(items))
    citi_half, citi_end = np.r_[np.zeros(10), np.ones(90)], np.r_[np.zeros(30), np.ones(70)]
    snap("citi", "a", 0.5, 2.8, citi_half)
    snap("citi", "final", 1.0, 2.4, citi_end)
    stats = {**MAIN_STATS, "general": ["triviaqa-mc"], "x_star": 0.4}
    config = ReproduceConfig(methods=["ft", "citi"], analyses=[], stats=stats)
    rows = {c.claim: c for c in method_comparisons(tmp_path, config)}
    c = rows["triviaqa-mc of citi > ft's, at equal tool learning (x* = 0.4)"]
    ft_at = 0.5 * base_items + 0.5 * ft_half  # gain 0 -> 0.8 over [0, 0.5]: x* at 0.25
    citi_at = 0.5 * citi_half + 0.5 * citi_end  # gain 0.2 -> 0.6 over [0.5, 1]: x* at 0.75
    assert c.diff == pytest.approx(citi_at.mean() - ft_at.mean())  # 0.8 - 0.7
    assert c.verdict == "holds" and "retention-tool-args drop 0.4" in c.note


@pytest.mark.parametrize(
    "stats, needle",
    [
        ({"general": []}, "stats.general"),
        ({"general": "drift-"}, "stats.general"),
        ({"x_task": ""}, "stats.x_task"),
    ],
)
def test_bad_measure_settings_name_the_key(stats, needle):
    with pytest.raises(ConfigError, match=needle):
        ReproduceConfig(methods=["ft", "lora"], analyses=[], stats=stats)


def test_x_star_by_rule_is_a_share_of_the_smallest_method_mean_final_gain(tmp_path):
    from citi.reproduce.comparisons import check_stats, shared_x_star

    def final(run, arg_nll):
        d = tmp_path / "eval" / run
        d.mkdir(parents=True)
        tasks = {"retention-tool-args": {"primary": "arg_nll", "metrics": {"arg_nll": arg_nll}}}
        (d / "results.json").write_text(json.dumps({"tasks": tasks}))

    final("base", 3.0)
    for run, nll in {"ft": 1.0, "ft-seed2": 1.4, "citi": 2.0, "citi-seed2": 2.2}.items():
        final(run, nll)
    config = ReproduceConfig(methods=["ft", "citi"], seeds=[1, 2], analyses=[])
    settings = check_stats({**MAIN_STATS, "x_star_share": 0.5})
    # mean gains: ft (2.0 + 1.6) / 2 = 1.8, citi (1.0 + 0.8) / 2 = 0.9: x* = 0.5 * 0.9
    assert shared_x_star(tmp_path, config, settings) == pytest.approx(0.45)
    final("lora", 3.5)  # a method that did not learn: no equal-learning comparison
    config = ReproduceConfig(methods=["ft", "lora"], analyses=[])
    assert shared_x_star(tmp_path, config, settings) is None
    with pytest.raises(ConfigError, match="not both"):
        check_stats({"x_star": 0.3, "x_star_share": 0.5})
    with pytest.raises(ConfigError, match="stats.x_star_share"):
        check_stats({"x_star_share": 1.5})


def decided(kind, verdict, subject="citi", against="lora", measure="ifeval", detectable=0.04):
    from citi.reproduce.stats import Comparison

    claim = f"{kind} {measure} {subject} vs {against}"
    c = Comparison(claim, 0.0, -0.1, 0.1, 0.5, 0.5, detectable, verdict=verdict)
    c.kind, c.subject, c.against = kind, subject, against
    return c


def main_rows(tool="holds", lora="holds", dm="holds", ft="holds", forgetting="holds"):
    """Rows as the main preset makes them: tool use vs LoRA, the general claims at equal tool
    learning against each comparator (two measures each: one given, one inconclusive), and
    "forgetting shows" on both measures."""
    rows = [decided("tool-use", tool)]
    for other, verdict in (("lora", lora), ("lora-dm", dm), ("ft", ft)):
        rows.append(decided("general", "inconclusive", against=other))  # final points: no vote
        rows.append(decided("general-at-equal-learning", verdict, against=other))
        rows.append(
            decided("general-at-equal-learning", "inconclusive", against=other, measure="mc")
        )
    rows.append(decided("forgetting", forgetting, subject="ft"))
    rows.append(decided("forgetting", "inconclusive", subject="ft", measure="mc"))
    return rows


@pytest.mark.parametrize(
    "change, verdict",
    [
        ({}, "supported"),
        # One comparator without a holding equal-learning claim: undecided, not supported.
        ({"dm": "inconclusive"}, "undecided"),
        ({"tool": "inconclusive"}, "undecided"),
        # Any equal-learning claim that does not hold, or tool use that is not comparable,
        # contradicts the claim, whatever else holds.
        ({"ft": "does not hold"}, "contradicted"),
        ({"tool": "does not hold"}, "contradicted"),
        ({"tool": "does not hold", "lora": "inconclusive"}, "contradicted"),
    ],
)
def test_the_papers_claim_is_read_by_the_registered_rule(change, verdict):
    from citi.reproduce.comparisons import paper_claim

    (reading,) = paper_claim(main_rows(**change))
    assert reading["method"] == "citi" and reading["verdict"] == verdict
    assert reading["forgetting_shown"] is True
    assert reading["reasons"]  # every reading says why


def test_an_undecided_claim_names_what_the_design_could_detect():
    from citi.reproduce.comparisons import paper_claim, paper_claim_text

    rows = main_rows(lora="inconclusive")
    rows[-3].detectable = 0.061  # ft's second equal-learning claim, in points (a share)
    (reading,) = paper_claim(rows)
    assert reading["verdict"] == "undecided"
    assert "no claim at equal tool learning holds against lora" in reading["reasons"]
    assert reading["detectable"]["general-at-equal-learning mc citi vs ft"] == "6.1 points"
    text = "\n".join(paper_claim_text([reading]))
    assert "citi: the paper's claim is undecided" in text and "6.1 points" in text


def test_without_forgetting_the_reading_says_the_experiment_could_not_show_it():
    from citi.reproduce.comparisons import paper_claim, paper_claim_text

    (reading,) = paper_claim(main_rows(forgetting="inconclusive"))
    assert reading["verdict"] == "supported" and reading["forgetting_shown"] is False
    assert "could not show forgetting" in "\n".join(paper_claim_text([reading]))


def test_presets_without_equal_learning_claims_get_no_reading(report):
    from citi.reproduce.comparisons import paper_claim

    config = ReproduceConfig(methods=["ft", "lora", "citi"], analyses=[])
    rows = method_comparisons(report, config)
    assert {r.kind for r in rows} == {"tool-use", "general", "forgetting", "leak"}
    assert paper_claim(rows) == []
