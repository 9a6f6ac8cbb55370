"""A user's conversations: any supported format in, canonical :class:`Conversation` rows out.

``load_conversations(src, fmt)`` reads a file, folder or hub id (see :mod:`citi.data.sources`),
recognises or applies the format (:mod:`citi.data.tool_formats`) and checks every row
(:mod:`citi.data.canonical`). ``split_conversations`` holds out a seeded share of whole
conversations; ``to_examples`` turns rows into the :class:`Example` s every stage trains on.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

from citi.data.canonical import Conversation, conversation
from citi.data.example import GENERAL, TOOL, Example
from citi.data.sources import read_source
from citi.data.tool_formats import CONVERTERS, FORMATS, detect_format
from citi.errors import ConfigError, DataError

__all__ = [
    "FORMATS",
    "SUPERVISE",
    "Conversation",
    "load_conversations",
    "split_conversations",
    "to_examples",
    "write_conversations",
]

SUPERVISE = ("all", "last")
# Held-out conversations are chosen by a fixed seed, not the training seed, so importance,
# training and evaluation (every seed of a sweep too) agree on which rows are held out.
EVAL_SPLIT_SEED = "citi-eval-split"


def check_format(fmt: str, option: str = "--format") -> str:
    if fmt != "auto" and fmt not in FORMATS:
        raise ConfigError(f"{option}: unknown format {fmt!r}; choose auto, {', '.join(FORMATS)}")
    return fmt


def load_conversations(
    src: str | Path, fmt: str = "auto", where: str | None = None
) -> list[Conversation]:
    """Every row of ``src`` as a canonical conversation. ``fmt`` is a name of :data:`FORMATS` or
    ``auto`` (recognised from the first record's keys). ``where`` prefixes errors with the option
    the source came from. One malformed row is an error naming file, line and field."""
    check_format(fmt)
    try:
        rows = read_source(src)
        if fmt == "auto":
            fmt = detect_format(rows[0][1], rows[0][0])
        convert = CONVERTERS[fmt]
        out = []
        for at, rec in rows:
            if not isinstance(rec, dict):
                raise DataError(f"{at}: a record is not an object")
            out.append(conversation(convert(rec, at), at))
        return out
    except DataError as err:
        if where:
            raise DataError(f"{where}: {err}") from None
        raise


def write_conversations(conversations: Sequence[Conversation], out: str | Path) -> Path:
    """The canonical JSONL, written atomically (no half-written file on an error)."""
    from citi.io import atomic_path

    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for conv in conversations:
            fh.write(json.dumps(conv.to_json(), ensure_ascii=False) + "\n")
    return Path(out)


def split_conversations(
    conversations: Sequence[Conversation], fraction: float
) -> tuple[list[Conversation], list[Conversation]]:
    """(kept, held out): ``round(fraction * n)`` whole conversations held out by a fixed seed."""
    if not 0 < fraction < 1:
        raise ConfigError(f"--eval-fraction: must be in (0, 1), got {fraction}")
    n = len(conversations)
    k = round(fraction * n)
    if k < 1 or k >= n:
        raise ConfigError(
            f"--eval-fraction: {fraction} of {n} conversations holds out {k}; "
            f"at least one must be held out and one kept"
        )
    held = set(random.Random(EVAL_SPLIT_SEED).sample(range(n), k))
    kept = [c for i, c in enumerate(conversations) if i not in held]
    return kept, [conversations[i] for i in sorted(held)]


def to_examples(
    conversations: Sequence[Conversation], ability: str, source: str, supervise: str = "all"
) -> list[Example]:
    """Training examples: every assistant turn supervised (``all``) or only the last one; the
    routing label is the row's own (tool when it has tools or calls, or ``task`` says so)."""
    if supervise not in SUPERVISE:
        raise ConfigError(f"--supervise: choose all or last, got {supervise!r}")
    return [
        Example(
            c.messages,
            c.assistant_turns[-1],
            TOOL if c.is_tool else GENERAL,
            ability,
            source,
            {"where": c.where},
            tools=c.tools,
            supervise=supervise,
        )
        for c in conversations
    ]
