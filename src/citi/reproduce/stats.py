"""Paired statistics for comparing training methods evaluated on the same items.

Every method is scored on the same evaluation items, so comparisons are paired: the item-to-item
variation (some prompts are hard for every model) cancels in the difference. With several
training seeds per method there are two sources of noise, items and seeds, and both are resampled
(a hierarchical bootstrap):

- items are resampled once per bootstrap replicate, and that one resample is shared by every run,
  so the pairing survives;
- seeds are resampled with replacement within each method (rescaled, so that two or three seeds
  keep their spread).

The bootstrap gives the standard error; intervals and p-values use a t reference whose degrees
of freedom (Welch–Satterthwaite) come from the per-seed run means, since two or three seeds
estimate the seed noise poorly. Simulated without an effect (100 items, tests/reproduce), the
two-sided rejection rate was 6.3% with 2 seeds, 4.7% with 3 and 2.3% with 5.

Verdicts come from one-sided tests at ``ALPHA`` (0.025, the two sides of a 95% interval), Holm
corrected across the claims of one report:

- a claim "A better than B" *holds* when the test of "A is not better" rejects; it *does not
  hold* when the test of "A is at least as good" rejects (A is reliably worse);
- a non-inferiority claim "A no worse than B by more than the margin m" holds when "A is worse by
  m or more" is rejected and does not hold when "A is worse by less than m" is rejected;
- otherwise it is *inconclusive*, and the smallest effect the comparison could have detected
  (80% power at the same level) is printed with it.

Also here: the exact McNemar test for paired correctness, BCa intervals (scipy) for skewed means,
and the value of a run's curve where it first reaches a fixed tool gain x* (comparisons at equal
learning: a method that learns less also drifts less).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

ALPHA = 0.025  # one-sided, per claim before Holm: the two sides of a 95% interval
HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs: ``a_only`` items A got right and
    B wrong, ``b_only`` the reverse (a binomial test of a_only out of a_only + b_only at 1/2)."""
    if a_only < 0 or b_only < 0:
        raise ValueError("discordant counts must be >= 0")
    n = a_only + b_only
    if n == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(a_only, n, 0.5, alternative="two-sided").pvalue)


def mcnemar_one_sided(a_only: int, b_only: int) -> float:
    """Exact one-sided p-value of "A is not more often right than B" (large when A is not)."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(a_only, n, 0.5, alternative="greater").pvalue)


def discordant(a: Sequence[float], b: Sequence[float]) -> tuple[int, int]:
    """(items A right and B wrong, items B right and A wrong) of two paired 0/1 score lists."""
    if len(a) != len(b):
        raise ValueError(f"paired scores differ in length: {len(a)} vs {len(b)}")
    a_only = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    b_only = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    return a_only, b_only


def _as_runs(scores) -> np.ndarray:
    """[seeds, items] float array from one run's item list or a list of runs' item lists."""
    arr = np.asarray(scores, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError("scores must be [items] or [seeds, items] with at least one item")
    return arr


def bootstrap_differences(
    a, b, resamples: int = 2000, seed: int = 0, chunk: int = 250
) -> tuple[float, np.ndarray]:
    """The observed difference of means A − B and its bootstrap replicates.

    ``a`` and ``b``: per-item scores of one run each ([items], a paired bootstrap) or of several
    seeds each ([seeds, items], the hierarchical bootstrap); both on the same items in the same
    order. Each replicate draws one item resample shared by both methods and, independently per
    method, a resample of its seeds."""
    a, b = _as_runs(a), _as_runs(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"A and B are scored on different items ({a.shape[1]} vs {b.shape[1]})")
    n = a.shape[1]
    rng = np.random.default_rng(seed)
    out = np.empty(resamples)
    for start in range(0, resamples, chunk):  # bounded memory: [seeds, chunk, items] at a time
        k = min(chunk, resamples - start)
        items = rng.integers(0, n, size=(k, n))
        reps = []
        for runs in (a, b):
            per_seed = runs[:, items].mean(axis=2).T  # [k, seeds]
            s = runs.shape[0]
            centre = per_seed.mean(axis=1)
            drawn = np.take_along_axis(per_seed, rng.integers(0, s, size=(k, s)), axis=1)
            # Resampling s seeds with replacement shrinks their spread by (s - 1) / s; the
            # rescaled bootstrap puts it back (a pure item bootstrap when s is 1).
            scale = math.sqrt(s / (s - 1)) if s > 1 else 0.0
            reps.append(centre + scale * (drawn.mean(axis=1) - centre))
        out[start : start + k] = reps[0] - reps[1]
    return float(a.mean() - b.mean()), out


@dataclass
class Comparison:
    """The outcome of one claim: A − B with its interval, p-values and verdict."""

    claim: str
    diff: float
    low: float
    high: float
    p_for: float  # one-sided p of the null "the claim is false" (small: evidence for it)
    p_against: float  # one-sided p of the null "the claim is true" (small: evidence against)
    detectable: float  # the smallest |effect| with 80% power at ALPHA, same units as diff
    margin: float = 0.0
    higher_is_better: bool = True
    verdict: str = INCONCLUSIVE
    unit: str = ""
    note: str = ""
    # What the claim is about, for the reading of the paper's claim (comparisons.paper_claim):
    # its family, the method it is about and the comparator ("" where not a method pair).
    kind: str = ""
    subject: str = ""
    against: str = ""

    def as_dict(self) -> dict:
        return dict(vars(self))


def compare_paired(
    claim: str,
    a,
    b,
    higher_is_better: bool = True,
    margin: float = 0.0,
    resamples: int = 2000,
    seed: int = 0,
    unit: str = "",
) -> Comparison:
    """Test "A better than B" (``margin`` 0) or "A no worse than B by more than ``margin``"
    (non-inferiority, ``margin`` > 0) on paired per-item scores (see bootstrap_differences).

    ``higher_is_better`` False (a KL, an NLL) flips the direction. The bootstrap gives the
    standard error; the interval and the one-sided p-values use a t reference with
    :func:`seed_df` degrees of freedom. The verdict is set by :func:`decide` (after Holm)."""
    if margin < 0:
        raise ValueError("the non-inferiority margin must be >= 0")
    from scipy.stats import t as student

    diff, reps = bootstrap_differences(a, b, resamples, seed)
    spread = float(np.std(reps, ddof=1))
    se = max(spread, 1e-300)  # 0 when no item differs: then only an exact shift decides
    df = seed_df(a, b, se)
    # In the claim's direction (positive favours A); the claim says A − B beats -margin.
    stat = ((1.0 if higher_is_better else -1.0) * diff + margin) / se
    q = float(student.ppf(1 - ALPHA, df))
    return Comparison(
        claim=claim,
        diff=diff,
        low=diff - q * se,
        high=diff + q * se,
        p_for=float(student.sf(stat, df)),
        p_against=float(student.cdf(stat, df)),
        detectable=(q + float(student.ppf(0.8, df))) * spread,
        margin=margin,
        higher_is_better=higher_is_better,
        unit=unit,
    )


def seed_df(a, b, se: float) -> float:
    """Degrees of freedom of the t reference (Welch–Satterthwaite): the variance ``se``² splits
    into the seeds' part, estimated from the per-seed run means with few degrees of freedom,
    and the rest, estimated from many items. With two or three seeds a normal reference would
    reject a true null too often when seed noise dominates. Infinite with one seed per method,
    where only items vary (and the verdict is about those runs, not the methods)."""
    a, b = _as_runs(a), _as_runs(b)
    parts = [
        (float(np.var(r.mean(axis=1), ddof=1)) / r.shape[0], r.shape[0] - 1)
        for r in (a, b)
        if r.shape[0] > 1
    ]
    if not parts:
        return math.inf
    total = se * se
    seeds = sum(v for v, _ in parts)
    items = max(total - seeds, 0.0)
    den = sum(v * v / d for v, d in parts) + items * items / max(a.shape[1] - 1, 1)
    return math.inf if den == 0 else max(1.0, total * total / den)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (step-down, monotone, capped at 1), in the input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def decide(comparisons: Sequence[Comparison], alpha: float = ALPHA) -> list[Comparison]:
    """Set each comparison's verdict with Holm's correction across all of them (separately for
    the tests for and against the claims); returns the same objects."""
    p_for = holm([c.p_for for c in comparisons])
    p_against = holm([c.p_against for c in comparisons])
    for c, pf, pa in zip(comparisons, p_for, p_against, strict=True):
        c.verdict = HOLDS if pf < alpha else FAILS if pa < alpha else INCONCLUSIVE
    return list(comparisons)


def bca_interval(values: Sequence[float], level: float = 0.95, resamples: int = 2000, seed=0):
    """BCa bootstrap interval of the mean (scipy), for skewed per-item scores such as a KL; a
    constant sample gets its value as both ends."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        raise ValueError("bca_interval needs at least one value")
    if np.all(arr == arr[0]):
        return float(arr[0]), float(arr[0])
    from scipy.stats import bootstrap

    res = bootstrap(
        (arr,),
        np.mean,
        confidence_level=level,
        n_resamples=resamples,
        method="BCa",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def first_crossing(xs: Sequence[float], x_star: float) -> float | None:
    """Where a curve through points 0..n-1 first reaches ``x_star``: a fractional index (linear
    between the bracketing points), or None when it never does."""
    for i, x in enumerate(xs):
        if x >= x_star:
            if i == 0:
                return 0.0
            prev = xs[i - 1]
            return i - 1 + (x_star - prev) / (x - prev)
    return None


def at_crossing(values: Sequence, where: float):
    """A per-point sequence (numbers or per-item arrays) read at a fractional index, linearly
    between the two bracketing points (the same weight for every item)."""
    i = math.floor(where)
    if i >= len(values) - 1:
        return np.asarray(values[-1], dtype=float)
    t = where - i
    return (1 - t) * np.asarray(values[i], dtype=float) + t * np.asarray(values[i + 1], dtype=float)


def at_equal_learning(
    fractions: Sequence[float], gains: Sequence[float], items: Sequence, x_star: float
) -> dict | None:
    """A run's per-item scores where its tool gain first reaches ``x_star`` (fixed in advance):
    {"fraction": training fraction there, "items": the interpolated per-item scores}; None when
    the run never reaches it. ``fractions``, ``gains`` and ``items`` are its snapshot curve."""
    where = first_crossing(gains, x_star)
    if where is None:
        return None
    return {"fraction": float(at_crossing(fractions, where)), "items": at_crossing(items, where)}


def pooled(per_task: Mapping[str, Sequence[float]]) -> list[float]:
    """Per-item scores of several tasks as one item list (task order kept; items are paired
    across runs within a task, so the pooled lists stay paired)."""
    return [v for task in sorted(per_task) for v in per_task[task]]
