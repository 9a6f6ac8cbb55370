"""Reading raw record files (JSON list or JSON Lines, optionally gzipped) with precise errors."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from citi.errors import DataError


def _open_text(path: Path) -> str:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                return fh.read()
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise DataError(f"{path}: cannot read ({err})") from None


def read_records(path: Path, lines: bool = False) -> list[dict[str, Any]]:
    """All records of a ``.json`` (a list) or ``.jsonl`` file; a malformed line names file:line.

    ``lines`` reads a file as JSON Lines whatever its suffix (BFCL's ``.json`` files are).
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    text = _open_text(path)
    stem = path.name.removesuffix(".gz")
    if lines or stem.endswith(".jsonl"):
        records = []
        # Split on "\n" only: some records hold raw U+0085, which str.splitlines() would split on.
        for lineno, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{lineno}: malformed JSON ({err.msg})") from None
            except RecursionError:
                raise DataError(f"{path}:{lineno}: JSON nested too deeply") from None
    else:
        try:
            records = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{err.lineno}: malformed JSON ({err.msg})") from None
        except RecursionError:
            raise DataError(f"{path}: JSON nested too deeply") from None
        if isinstance(records, dict):
            records = [records]
    if not isinstance(records, list):
        raise DataError(f"{path}: expected a JSON list of records, got {type(records).__name__}")
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise DataError(f"{path}: record {i + 1} is a {type(rec).__name__}, not an object")
    return records


@dataclass(frozen=True)
class ListOf:
    """A field that must be a list whose items have type ``item`` (non-empty if asked)."""

    item: type | tuple[type, ...]
    nonempty: bool = False


Spec = type | tuple[type, ...] | ListOf


def _describe(spec: Spec) -> str:
    if isinstance(spec, ListOf):
        return f"a {'non-empty ' if spec.nonempty else ''}list of {_describe(spec.item)}"
    types = spec if isinstance(spec, tuple) else (spec,)
    names = {str: "text", int: "an integer", float: "a number", dict: "an object", list: "a list"}
    return " or ".join(names.get(t, "null" if t is type(None) else t.__name__) for t in types)


def _matches(value: Any, spec: Spec) -> bool:
    if isinstance(spec, ListOf):
        return (
            isinstance(value, list)
            and (bool(value) or not spec.nonempty)
            and all(_matches(v, spec.item) for v in value)
        )
    types = spec if isinstance(spec, tuple) else (spec,)
    if isinstance(value, bool) and bool not in types:
        return False  # JSON true/false are not numbers here
    return isinstance(value, types)


def require(
    path: Path,
    index: int,
    record: dict,
    keys: Iterable[str] | dict[str, Spec],
    optional: dict[str, Spec] | None = None,
) -> None:
    """Fail with file, record number and field if ``record`` lacks ``keys`` or a field (given
    with its type spec, or among ``optional`` when present) has the wrong type."""
    missing = [k for k in keys if k not in record]
    if missing:
        raise DataError(
            f"{path}: record {index + 1} lacks field(s) {', '.join(missing)} "
            f"(has: {', '.join(sorted(record)) or 'none'})"
        )
    specs = dict(keys) if isinstance(keys, dict) else {}
    specs.update({k: v for k, v in (optional or {}).items() if k in record})
    for key, spec in specs.items():
        if not _matches(record[key], spec):
            raise DataError(
                f"{path}: record {index + 1}: field {key!r} must be {_describe(spec)}, "
                f"got {_short(record[key])}"
            )


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class Schema:
    """The fields every record of a format has (``required``) and may have (``optional``),
    each with its type spec."""

    required: dict[str, Spec]
    optional: dict[str, Spec] = field(default_factory=dict)


def load_records(
    path: Path,
    schema: Schema,
    build: Callable[[int, dict], Any],
    indices: Callable[[int], Iterable[int]] | None = None,
) -> list:
    """The one skeleton of every loader: read ``path``, check each record against ``schema``
    (file, record and field named), and ``build(index, record)`` its item (or a list of items).
    ``indices(n)`` keeps only some of the ``n`` records, in that order (a fixed split)."""
    records = read_records(path)
    out = []
    for i in range(len(records)) if indices is None else indices(len(records)):
        require(path, i, records[i], schema.required, schema.optional)
        built = build(i, records[i])
        out.extend(built if isinstance(built, list) else [built])
    return out
