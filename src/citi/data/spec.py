"""A named dataset: its ability, task type, split, the raw files it is read from and its loader."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from citi.data.example import Example


@dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    name: str
    ability: str
    task_type: int
    split: str  # "train" or "eval"
    candidates: tuple[str, ...]  # relative paths, first existing wins
    loader: Callable[[Path, DatasetSpec], list[Example]]
    description: str
    multi_file: bool = False  # read every existing candidate, not just the first

    def find(self, data_dir: Path) -> list[Path]:
        found = []
        for rel in self.candidates:
            for path in (data_dir / rel, data_dir / f"{rel}.gz"):
                if path.is_file():
                    found.append(path)
                    break
            if found and not self.multi_file:
                break
        return found
