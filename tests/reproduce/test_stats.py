"""The report's statistics on synthetic data with known answers."""

import numpy as np
import pytest

from citi.reproduce.stats import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    at_equal_learning,
    bca_interval,
    bootstrap_differences,
    compare_paired,
    decide,
    discordant,
    first_crossing,
    holm,
    mcnemar_exact,
    mcnemar_one_sided,
)


def test_mcnemar_on_13_against_1_discordant_pairs():
    # FT vs LoRA on API-Bank level 3 in the `cpu` report: read as "overlapping" intervals.
    assert mcnemar_exact(13, 1) == pytest.approx(2 * 15 / 2**14)  # 0.00183
    assert mcnemar_exact(1, 13) == mcnemar_exact(13, 1)
    assert mcnemar_one_sided(13, 1) == pytest.approx(15 / 2**14)
    assert mcnemar_exact(5, 5) == 1.0 and mcnemar_exact(0, 0) == 1.0
    a = [1] * 13 + [0] * 1 + [1] * 20 + [0] * 30
    b = [0] * 13 + [1] * 1 + [1] * 20 + [0] * 30
    assert discordant(a, b) == (13, 1)


def test_holm_adjusts_step_down_and_keeps_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    assert holm([0.02, 0.9]) == pytest.approx([0.04, 0.9])


def test_the_item_resample_is_shared_by_both_runs():
    rng = np.random.default_rng(0)
    a = rng.normal(size=50)
    diff, reps = bootstrap_differences(a, a.copy(), resamples=200)
    assert diff == 0 and np.all(reps == 0)  # paired: identical runs never differ
    shifted = bootstrap_differences(a + 0.3, a, resamples=200)[1]
    assert np.allclose(shifted, 0.3)


def _runs(rng, item, seeds, mean, seed_sd=0.3, noise=1.0):
    return (
        item[None, :]
        + mean
        + rng.normal(0, seed_sd, (seeds, 1))
        + rng.normal(0, noise, (seeds, item.size))
    )


def _rejections(seeds: int, effect: float, sims: int) -> float:
    """Share of simulated experiments (items, seed effects and noise drawn afresh) in which the
    comparison of A against B reaches a verdict either way."""
    rng = np.random.default_rng(1234 + seeds)
    decided = 0
    for k in range(sims):
        item = rng.normal(0, 1, 60)
        a, b = _runs(rng, item, seeds, effect), _runs(rng, item, seeds, 0.0)
        c = decide([compare_paired("a > b", a, b, resamples=200, seed=k)])[0]
        decided += c.verdict != INCONCLUSIVE
    return decided / sims


def test_type_one_error_is_near_five_percent_without_an_effect():
    # 400 experiments: the standard error of a 5% rate is 1.1 points.
    rate = _rejections(seeds=3, effect=0.0, sims=400)
    assert 0.02 <= rate <= 0.085, rate


def test_power_rises_with_seeds():
    two, five = _rejections(2, 0.5, 150), _rejections(5, 0.5, 150)
    assert five > two + 0.15, (two, five)


def test_superiority_and_non_inferiority_verdicts():
    rng = np.random.default_rng(3)
    item = rng.normal(0, 1, 300)
    b = item + rng.normal(0, 0.1, 300)
    better = b + 0.2 + rng.normal(0, 0.1, 300)
    slightly_worse = b - 0.02 + rng.normal(0, 0.1, 300)
    much_worse = b - 0.3 + rng.normal(0, 0.1, 300)
    rows = decide(
        [
            compare_paired("better", better, b),
            compare_paired("worse", much_worse, b),
            compare_paired("comparable", slightly_worse, b, margin=0.1),
            compare_paired("comparable, tight margin", much_worse, b, margin=0.1),
            compare_paired("lower KL is better", much_worse, b, higher_is_better=False),
        ]
    )
    assert [r.verdict for r in rows] == [HOLDS, FAILS, HOLDS, FAILS, HOLDS]
    assert rows[0].low < 0.2 < rows[0].high and rows[0].diff == pytest.approx(0.2, abs=0.03)
    assert 0 < rows[0].detectable < 0.1


def test_a_small_sample_is_inconclusive_and_says_what_it_could_detect():
    rng = np.random.default_rng(5)
    item = rng.normal(0, 1, 8)
    a, b = item + rng.normal(0, 1, 8), item + rng.normal(0, 1, 8)
    c = decide([compare_paired("a > b", a, b)])[0]
    assert c.verdict == INCONCLUSIVE
    assert c.detectable > abs(c.diff) and c.detectable > 0.5


def test_holm_can_turn_a_lone_win_into_inconclusive():
    rng = np.random.default_rng(11)
    item = rng.normal(0, 1, 200)
    b = item + rng.normal(0, 1, 200)
    a = b + 0.1 + rng.normal(0, 0.5, 200)
    alone = decide([compare_paired("a > b", a, b)])[0]
    nulls = [compare_paired(f"null {i}", b + rng.normal(0, 0.5, 200), b) for i in range(9)]
    crowded = decide([compare_paired("a > b", a, b), *nulls])[0]
    assert 0.0025 < alone.p_for < 0.025  # significant alone, not once ten claims share 5%
    assert alone.verdict == HOLDS and crowded.verdict == INCONCLUSIVE


def test_bca_interval_of_a_skewed_mean_is_asymmetric():
    values = np.random.default_rng(2).exponential(1.0, 80)
    low, high = bca_interval(values)
    mean = values.mean()
    assert low < mean < high and high - mean > mean - low
    assert bca_interval([0.5, 0.5, 0.5]) == (0.5, 0.5)


def test_equal_learning_reads_each_curve_at_its_first_crossing():
    assert first_crossing([0.0, 0.5, 1.5, 0.8], 1.0) == pytest.approx(1.5)
    assert first_crossing([0.0, 0.2], 1.0) is None
    assert first_crossing([2.0, 3.0], 1.0) == 0.0
    point = at_equal_learning(
        [0.0, 0.25, 0.5, 1.0],
        [0.0, 0.5, 1.5, 2.0],
        [[0, 0], [1, 2], [3, 6], [9, 9]],
        x_star=1.0,
    )
    assert point["fraction"] == pytest.approx(0.375)
    assert np.allclose(point["items"], [2, 4])
    assert at_equal_learning([0.0, 1.0], [0.0, 0.1], [[0], [1]], 1.0) is None


def test_identical_scores_are_inconclusive_with_nothing_to_detect():
    from citi.reproduce.comparisons import row_text

    c = decide([compare_paired("a > b", np.zeros(30), np.zeros(30))])[0]
    assert c.verdict == INCONCLUSIVE and c.detectable == 0
    assert "detectable nothing (no item differs)" in row_text(c)["numbers"]
