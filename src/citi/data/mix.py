"""Data mixing: the tool data plus ``k`` random examples from each general source, shuffled."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence

from citi.data.example import Example

log = logging.getLogger(__name__)


def mix_datasets(
    tool: Sequence[Example],
    general: Mapping[str, Sequence[Example]],
    per_source: int,
    seed: int,
) -> list[Example]:
    """All of ``tool`` plus ``per_source`` examples sampled (seeded, without replacement) from each
    general source, shuffled together. A source smaller than ``per_source`` is used whole."""
    if per_source < 0:
        raise ValueError("per_source must be >= 0")
    rng = random.Random(seed)
    mixed = list(tool)
    # Sorted so the result does not depend on the caller's dict order.
    for name in sorted(general):
        source = list(general[name])
        if len(source) < per_source:
            log.warning(
                "general source %s has %d examples < %d requested: using all",
                name,
                len(source),
                per_source,
            )
            mixed.extend(source)
        else:
            mixed.extend(rng.sample(source, per_source))
    rng.shuffle(mixed)
    return mixed
