"""Reading a user's data source into raw records, each with the place it came from.

A source is a ``.jsonl``/``.json`` file (optionally ``.gz``; parsed here, so JSON values stay
exactly as written), a ``.parquet`` file, a folder written by ``datasets``' ``save_to_disk``, or
a Hugging Face hub id. Columnar sources go through Hugging Face ``datasets``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from citi.data.records import read_records
from citi.errors import DataError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _jsonl(path: Path) -> Iterator[tuple[str, Any]]:
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            # Split on "\n" only: str.splitlines() would also split on U+2028 inside a record.
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    yield f"{path}:{lineno}", json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(f"{path}:{lineno}: malformed JSON ({err.msg})") from None
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise DataError(f"{path}: cannot read ({err})") from None


def _drop_null_padding(value: Any) -> Any:
    """Arrow gives every struct the union of its keys, ``None`` where a row had none (the padding
    ``datasets`` < 4.8 adds to tool arguments): drop ``None`` values from objects."""
    if isinstance(value, dict):
        return {k: _drop_null_padding(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_null_padding(v) for v in value]
    return value


def _columnar(dataset, label: str) -> Iterator[tuple[str, Any]]:
    if hasattr(dataset, "keys") and not hasattr(dataset, "features"):  # a DatasetDict
        splits = list(dataset.keys())
        if "train" not in splits and len(splits) != 1:
            raise DataError(f"{label}: several splits ({', '.join(splits)}) and none is 'train'")
        dataset = dataset["train" if "train" in splits else splits[0]]
    for i, row in enumerate(dataset.to_list()):
        yield f"{label}: record {i + 1}", _drop_null_padding(row)


def _hub(src: str) -> Iterator[tuple[str, Any]]:
    import os

    import datasets
    import huggingface_hub

    hub_logs = huggingface_hub.utils.logging.get_verbosity()
    huggingface_hub.utils.logging.set_verbosity_error()  # no retry warnings: one error line
    try:
        if not os.environ.get("HF_HUB_OFFLINE"):
            # One quick request first: load_dataset retries an unreachable hub for ~30 s.
            huggingface_hub.dataset_info(src, timeout=10)
        dataset = datasets.load_dataset(src, split="train")
    except Exception as err:  # the hub and datasets raise many types for "cannot reach / no such"
        reason = " ".join(str(err).split())[:160]
        raise DataError(
            f"{src}: cannot load this hub dataset (offline, or no such dataset?): {reason}; "
            f"download it where there is internet and pass the file or save_to_disk folder"
        ) from None
    finally:
        huggingface_hub.utils.logging.set_verbosity(hub_logs)
    yield from _columnar(dataset, src)


def read_source(src: str | Path) -> list[tuple[str, Any]]:
    """``[(where, record), ...]`` of a source; ``where`` is ``file:line`` or ``file: record N``.
    A missing file, an unreadable one or an empty one is one error naming it."""
    path = Path(src).expanduser()
    name = path.name.removesuffix(".gz")
    if path.is_dir():
        import datasets

        try:
            rows = list(_columnar(datasets.load_from_disk(str(path)), str(path)))
        except FileNotFoundError:
            raise DataError(f"{path}: not a folder written by datasets' save_to_disk") from None
    elif path.is_file() and name.endswith(".jsonl"):
        rows = list(_jsonl(path))
    elif path.is_file() and name.endswith(".json"):
        rows = [(f"{path}: record {i + 1}", r) for i, r in enumerate(read_records(path))]
    elif path.is_file() and name.endswith(".parquet"):
        import datasets

        try:
            rows = list(_columnar(datasets.Dataset.from_parquet(str(path)), str(path)))
        except Exception as err:  # arrow's errors for a corrupt file
            raise DataError(f"{path}: cannot read as parquet ({err})") from None
    elif path.is_file():
        raise DataError(f"{path}: unknown file type (expected .jsonl, .json or .parquet)")
    elif HUB_ID.match(str(src)) and not str(src).startswith((".", "~")):
        rows = list(_hub(str(src)))
    else:
        raise DataError(f"{src}: file not found (and not a hub id like owner/name)")
    if not rows:
        raise DataError(f"{src}: no records (empty file)")
    return rows
