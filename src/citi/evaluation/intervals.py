"""95% confidence intervals for evaluation metrics: Wilson for shares, bootstrap for means.

A share (correctness, accuracy, pass@1, exact match, a leak rate) is a binomial proportion: the
Wilson score interval stays inside [0, 1] and keeps its coverage for small n and for 0 or n
successes, where the normal approximation collapses to a point. A mean of a continuous per-sample
score (ROUGE-L, a per-example KL) gets a seeded percentile bootstrap.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of ``successes`` out of ``n``."""
    if n <= 0:
        raise ValueError("wilson_interval needs n >= 1")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, {n}], got {successes}")
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # The exact bounds are 0 at k = 0 and 1 at k = n; floating point lands a hair off them.
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return lo, hi


def bootstrap_interval(
    values: Sequence[float], resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (seeded, so reproducible)."""
    n = len(values)
    if n == 0:
        raise ValueError("bootstrap_interval needs at least one value")
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    lo = means[int(math.floor((1 - level) / 2 * (resamples - 1)))]
    hi = means[int(math.ceil((1 + level) / 2 * (resamples - 1)))]
    return lo, hi


def is_binary(values: Sequence[float]) -> bool:
    return all(v in (0, 1) for v in values)


def interval(values: Sequence[float], share: bool | None = None) -> dict | None:
    """{"low", "high", "method", "n"} for per-sample ``values`` of a metric; None when empty.
    ``share``: whether the metric is a share of 0/1 outcomes (Wilson) rather than a mean of
    scores (bootstrap); None guesses from the values (all 0 or 1)."""
    values = [float(v) for v in values]
    if not values:
        return None
    if share is None:
        share = is_binary(values)
    if share and is_binary(values):
        lo, hi = wilson_interval(int(sum(values)), len(values))
        method = "wilson"
    else:
        lo, hi = bootstrap_interval(values)
        method = "bootstrap"
    return {"low": lo, "high": hi, "method": method, "n": len(values)}
