import pytest

from citi.analysis.jaccard import (
    expected_random_jaccard,
    jaccard,
    jaccard_analysis,
    simulated_random_jaccard,
    split_thirds,
)


def test_jaccard_and_thirds():
    assert jaccard({1, 2}, {2, 3}) == pytest.approx(1 / 3)
    groups = split_thirds(list("abcdefg"))
    assert groups == {"high": list("abc"), "moderate": list("de"), "low": list("fg")}


def test_expected_random_by_hand():
    # n = 6, k = 2: P(|A∩B| = 0, 1, 2) = 6/15, 8/15, 1/15 -> E[J] = 8/15 · 1/3 + 1/15 = 11/45.
    assert expected_random_jaccard(6, 2) == pytest.approx(11 / 45)
    assert expected_random_jaccard(5, 5) == 1.0
    assert simulated_random_jaccard(6, 2, draws=40000) == pytest.approx(11 / 45, abs=0.01)
    assert simulated_random_jaccard(210, 70, 4000) == pytest.approx(
        expected_random_jaccard(210, 70), abs=0.01
    )


def test_analysis_identical_and_reversed_rankings():
    r = [f"c{i}" for i in range(9)]
    res = jaccard_analysis({"a": r, "b": r, "c": r[::-1]}, draws=100)
    high = res["groups"]["high"]["matrix"]
    assert high[0][1] == 1.0 and high[0][2] == 0.0
    assert res["groups"]["moderate"]["matrix"][0][2] == 1.0  # the middle third is the same set
    with pytest.raises(ValueError):
        jaccard_analysis({"a": r, "b": r[:-1]})
