"""Shared config machinery: dataclass configs that load from YAML and save beside every result."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

from citi.errors import ConfigError
from citi.io import write_text_atomic

T = TypeVar("T")


def option_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def config_from_dict(cls: type[T], values: dict[str, Any], source: str = "config") -> T:
    """Build ``cls`` from a dict, rejecting unknown keys (a typo must not be silently ignored)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(unknown)} for {cls.__name__}; "
            f"known: {', '.join(sorted(names))}"
        )
    return cls(**values)


def load_yaml_config(cls: type[T], path: str | Path, **overrides: Any) -> T:
    """Read a YAML config file; ``overrides`` (e.g. explicit CLI options) win over its values."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config: {path} not found")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: malformed YAML") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of option names to values")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return config_from_dict(cls, values, str(path))


def save_config(config: Any, path: str | Path) -> Path:
    """Write the resolved config as YAML (atomically)."""
    data = dataclasses.asdict(config)
    return write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))
