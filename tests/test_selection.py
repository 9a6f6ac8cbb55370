import pytest

from citi.errors import ConfigError
from citi.selection import count_for, select_components


def _scores(n):
    names = [f"c{i:03d}" for i in range(n)]
    tool = {h: float(i) for i, h in enumerate(names)}  # c(n-1) most tool-important
    general = {h: float(i) for i, h in enumerate(names)}  # c000 least generally important
    return tool, general


def test_counts_match_the_paper():
    assert count_for(0.2, 224, "--molora-ratio") == 45
    assert count_for(0.1, 224, "--uco-ratio") == 22
    assert count_for(0.2, 210, "--molora-ratio") == 42


def test_top_selection_and_uco_exclusion():
    tool, general = _scores(10)
    sel = select_components(tool, general, 0.2, 0.1)
    assert sel.molora == ["c009", "c008"]
    assert sel.uco == ["c000"]
    # When the least generally-important components are also MOLoRA ones, UCO skips them.
    general = {h: -v for h, v in general.items()}  # now c009 is least generally important
    sel = select_components(tool, general, 0.2, 0.2)
    assert sel.uco == ["c007", "c006"]
    assert not set(sel.uco) & set(sel.molora)


def test_down_and_random():
    tool, general = _scores(10)
    assert select_components(tool, general, 0.2, 0.1, "down").molora == ["c000", "c001"]
    r1 = select_components(tool, general, 0.3, 0.1, "random", seed=5)
    r2 = select_components(tool, general, 0.3, 0.1, "random", seed=5)
    assert r1.molora == r2.molora and len(r1.molora) == 3
    assert r1.seed == 5


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1, 1.5])
def test_impossible_ratios(ratio):
    tool, general = _scores(10)
    with pytest.raises(ConfigError, match="--molora-ratio"):
        select_components(tool, general, ratio, 0.1)


def test_empty_and_overfull_sets():
    tool, general = _scores(10)
    with pytest.raises(ConfigError, match="selects none"):
        select_components(tool, general, 0.01, 0.1)
    with pytest.raises(ConfigError, match="--uco-ratio"):
        select_components(tool, general, 0.6, 0.5)
    with pytest.raises(ConfigError, match="--select"):
        select_components(tool, general, 0.2, 0.1, "middle")
    assert select_components(tool, general, 0.2, 0).uco == []
