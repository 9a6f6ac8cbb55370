"""Data sources as the commands take them: a named dataset or a user's file, folder or hub id.

``--tool-data SRC`` and ``--general-data [ABILITY=]SRC`` accept either. A named dataset
(``citi data list``) loads exactly as it always has; anything else is read as conversations
(:func:`citi.data.conversations.load_conversations`). A relative path that does not exist is
also looked for in the data directory (``--data-dir``/``$CITI_DATA_DIR``). With
``--eval-fraction F`` a fixed seeded share of the tool data's conversations is held out: every
command (importance, train, eval) holds out the same ones.
"""

from __future__ import annotations

import random
from pathlib import Path

from citi.data.conversations import (
    Conversation,
    load_conversations,
    split_conversations,
    to_examples,
)
from citi.data.datadir import resolve_data_dir
from citi.data.example import TOOL, Example
from citi.data.loading import get_spec, load_dataset
from citi.data.registry import DATASETS
from citi.errors import ConfigError


def is_named(src: str) -> bool:
    """Whether ``src`` names one of citi's datasets (a path of the same name wins)."""
    return src in DATASETS and not Path(src).exists()


def source_path(src: str, data_dir: str | None = None) -> str:
    """``src`` itself, or the same relative path inside the data directory when only it exists."""
    path = Path(src).expanduser()
    if path.exists() or path.is_absolute():
        return str(path)
    try:
        inside = resolve_data_dir(data_dir) / path
    except Exception:  # an unusable data directory: report the path as given
        return src
    return str(inside) if inside.exists() else src


def parse_general_data(values: list[str], option: str = "--general-data") -> dict[str, str]:
    """``["math=gsm8k", "my.jsonl"]`` -> ``{"math": "gsm8k", "my": "my.jsonl"}``; an ability
    left out is the file's stem."""
    out: dict[str, str] = {}
    for value in values:
        ability, sep, src = value.partition("=")
        if not sep or "/" in ability or not ability.strip():
            ability, src = Path(value).name.split(".")[0], value
        ability, src = ability.strip(), src.strip()
        if not src:
            raise ConfigError(f"{option}: empty source in {value!r}")
        if ability in out:
            raise ConfigError(f"{option}: ability {ability!r} is given twice")
        out[ability] = src
    return out


def load_source_conversations(
    src: str, data_dir: str | None, fmt: str, where: str | None
) -> list[Conversation]:
    """A user source's conversations; errors start with the option ``where`` it came from."""
    path = source_path(src, data_dir)
    if not Path(path).exists() and "/" not in src and "." not in src:
        get_spec(src)  # a bare name: an unknown dataset, with the closest known one
    return load_conversations(path, fmt, where=where)


def load_examples(
    src: str,
    ability: str,
    *,
    data_dir: str | None = None,
    fmt: str = "auto",
    supervise: str = "all",
    eval_fraction: float | None = None,
    limit: int | None = None,
    seed: int | None = None,
    where: str = "--tool-data",
    tool_only: bool = False,
) -> list[Example]:
    """The examples of a source. A user source is held out by ``eval_fraction`` (the kept part
    is returned) and sampled like a named dataset (``limit`` with a ``seed``). ``tool_only``
    keeps the rows labelled tool (the tool ability's importance)."""
    if is_named(src):
        if eval_fraction:
            raise ConfigError(
                f"--eval-fraction: holds out part of a user's tool data, not the named "
                f"dataset {src!r} (named datasets have their own test sets)"
            )
        return load_dataset(src, data_dir, limit=limit, seed=seed)
    conversations = load_source_conversations(src, data_dir, fmt, where)
    if eval_fraction:
        conversations, _ = split_conversations(conversations, eval_fraction)
    examples = to_examples(conversations, ability, src, supervise)
    if tool_only:
        examples = [e for e in examples if e.task_type == TOOL]
        if not examples:
            raise ConfigError(f"{where}: {src} has no tool rows (no tools or calls)")
    if limit is not None and limit < len(examples):
        examples = examples[:limit] if seed is None else random.Random(seed).sample(examples, limit)
    return examples


def held_out_conversations(
    tool_data: str | None,
    eval_data: str | None,
    eval_fraction: float | None,
    *,
    data_dir: str | None = None,
    fmt: str = "auto",
) -> list[Conversation]:
    """The conversations to evaluate on: ``eval_data`` whole, or the ``eval_fraction`` of
    ``tool_data`` that training held out."""
    if eval_data:
        if is_named(eval_data):
            raise ConfigError(f"--eval-data: {eval_data!r} is a named dataset; name it in --tasks")
        return load_source_conversations(eval_data, data_dir, fmt, "--eval-data")
    if tool_data and eval_fraction:
        if is_named(tool_data):
            raise ConfigError(
                "--eval-fraction: holds out part of a user's file, not a named dataset"
            )
        conversations = load_source_conversations(tool_data, data_dir, fmt, "--tool-data")
        return split_conversations(conversations, eval_fraction)[1]
    raise ConfigError("give --eval-data SRC, or --tool-data SRC with --eval-fraction F")


def check_user_options(
    fmt: str, supervise: str, eval_fraction: float | None, eval_data: str | None = None
) -> None:
    """The user-data options' values, checked before anything is loaded."""
    from citi.data.conversations import SUPERVISE, check_format

    check_format(fmt)
    if supervise not in SUPERVISE:
        raise ConfigError(f"--supervise: choose all or last, got {supervise!r}")
    if eval_fraction is not None:
        if isinstance(eval_fraction, bool) or not isinstance(eval_fraction, int | float):
            raise ConfigError(f"--eval-fraction: must be a number, got {eval_fraction!r}")
        if not 0 < eval_fraction < 1:
            raise ConfigError(f"--eval-fraction: must be in (0, 1), got {eval_fraction}")
        if eval_data:
            raise ConfigError("--eval-data and --eval-fraction: give one of them")
