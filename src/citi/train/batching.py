"""Which examples go into which micro-batch: the seeded epoch order, optionally grouped by length
so that a micro-batch wastes little compute on padding, and the padding it costs.

Both orders are a pure function of (seed, stage, epoch), so a resumed run rebuilds the order of
the epoch it stopped in and continues at the same micro-batch."""

from __future__ import annotations

import random
from collections.abc import Sequence

# Examples sorted together: this many global micro-batches. Sorting within a window of a shuffled
# epoch (not the whole epoch) keeps batches random in content while lengths inside each are close;
# the same idea as transformers' LengthGroupedSampler (its megabatches of 50 batches).
GROUP_WINDOW = 50


def epoch_order(
    n: int,
    seed: int,
    stage: int,
    epoch: int,
    multiple: int,
    lengths: Sequence[int] | None = None,
) -> list[int]:
    """A seeded permutation of range(n) for (stage, epoch), padded by wrapping around to a
    multiple of ``multiple`` (the examples of one global micro-batch) so every process gets a
    full micro-batch.

    With ``lengths`` (one per example), the order is grouped by length: the shuffled epoch is
    cut into windows of ``GROUP_WINDOW`` micro-batches, each window sorted longest first and cut
    into micro-batches, and the micro-batches shuffled again. Every example still appears once per
    epoch (the wrap-around ones twice), so the examples trained on, and each one's per-token
    loss, are the same as without grouping; only who shares a micro-batch changes."""
    rng = random.Random(f"{seed}-{stage}-{epoch}")
    order = list(range(n))
    rng.shuffle(order)
    order += order[: (-n) % multiple]
    if lengths is None:
        return order
    window = multiple * GROUP_WINDOW
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: -lengths[i])
        batches += [chunk[i : i + multiple] for i in range(0, len(chunk), multiple)]
    # A second, separate stream: the ungrouped order above stays what it always was.
    random.Random(f"{seed}-{stage}-{epoch}-batches").shuffle(batches)
    return [i for batch in batches for i in batch]


def padding_of(lengths: Sequence[int], per_process: int) -> tuple[int, int]:
    """(token slots, padded slots) of one global micro-batch whose examples have ``lengths``, cut
    into per-process micro-batches of ``per_process`` examples, each right-padded to its longest
    (what citi.data.PaddingCollator does)."""
    slots = padded = 0
    for start in range(0, len(lengths), per_process):
        part = lengths[start : start + per_process]
        slots += max(part) * len(part)
        padded += max(part) * len(part) - sum(part)
    return slots, padded
