"""Shared config machinery: dataclass configs that load from YAML and save beside every result."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from citi.errors import CitiError, ConfigError
from citi.io import write_text_atomic

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

# Configs are dataclasses: ``dataclasses.fields`` accepts only those.
T = TypeVar("T", bound="DataclassInstance")


def option_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str = "",  # noqa: A002 - argparse's word
    default_factory: Any = dataclasses.MISSING,
    **cli: Any,
) -> Any:
    """A config field with its help text and how the command line gives it, kept as field
    metadata (the shape of TRL's HfArgumentParser): ``option`` (a flag other than
    ``--field-name``), ``choices``, ``parse`` (text -> value, for lists and maps) and
    ``cli=False`` (no generated option: the command builds the value itself). The options
    themselves are made by citi.cli.common.add_config_options."""
    return dataclasses.field(
        default=default, default_factory=default_factory, metadata={"help": help, **cli}
    )


def comma_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_pairs(text: str, option: str, what: str = "name=value") -> dict[str, str]:
    """``tool=apibank-train,math=gsm8k`` -> ``{"tool": "apibank-train", "math": "gsm8k"}``;
    errors name ``option`` and the pair shape ``what`` (e.g. ``ability=dataset``)."""
    out: dict[str, str] = {}
    for part in comma_list(text):
        if "=" not in part:
            raise ConfigError(f"{option}: expected {what}, got {part!r}")
        key, value = (s.strip() for s in part.split("=", 1))
        if key in out:
            raise ConfigError(f"{option}: {what.split('=')[0]} {key!r} is given twice")
        out[key] = value
    return out


def _describe(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in args)
    if origin is list:
        return f"a list of {_describe(args[0])}" if args else "a list"
    if origin is dict or tp is dict:
        return f"a map of {_describe(args[0])} to {_describe(args[1])}" if args else "a map"
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return f"a map of settings ({tp.__name__})"
    names = {int: "an integer", float: "a number", str: "text", bool: "true or false"}
    return "null" if tp is type(None) else names.get(tp, getattr(tp, "__name__", str(tp)))


def matches_type(value: Any, tp: Any) -> bool:
    """Whether a YAML/JSON/CLI value fits a field annotation (int is a float; bool is neither)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True
    if origin in (types.UnionType, typing.Union):
        return any(matches_type(value, a) for a in args)
    if tp is type(None):
        return value is None
    if origin is list or tp is list:
        return isinstance(value, list) and all(matches_type(v, args[0]) for v in value if args)
    if origin is dict or tp is dict:
        return isinstance(value, dict) and (
            not args
            or all(matches_type(k, args[0]) and matches_type(v, args[1]) for k, v in value.items())
        )
    if tp is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if tp is float:
        return isinstance(value, int | float)
    return isinstance(value, tp) if isinstance(tp, type) else True


def check_types(cls: type, values: dict[str, Any], source: str = "config", path: str = "") -> None:
    """One error line naming the option (or, inside a section, the key path: ``eval.limit``)
    for the first value whose type does not fit ``cls``."""
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        tp = hints.get(key)
        if tp is not None and not matches_type(value, tp):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            name = f"{path}.{key}" if path else option_name(key)
            raise ConfigError(f"{name}: must be {_describe(tp)}, got {shown}")


def section_type(tp: Any) -> type | None:
    """The dataclass a field holds (``X`` or ``X | None``), if any: such a field is a section,
    built from a mapping by :func:`config_from_dict`."""
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return tp
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(inner) == 1 and isinstance(inner[0], type) and dataclasses.is_dataclass(inner[0]):
            return inner[0]
    return None


def build_sections(cls: type, values: dict[str, Any], path: str = "") -> dict[str, Any]:
    """``values`` with every mapping given for a section field built into its dataclass (an
    empty mapping for an optional section is no section)."""
    hints = typing.get_type_hints(cls)
    built = dict(values)
    for key, value in values.items():
        section = section_type(hints.get(key))
        if section is None or not isinstance(value, dict):
            continue
        optional = section is not hints[key]
        where = f"{path}.{key}" if path else key
        built[key] = (
            None if optional and not value else config_from_dict(section, value, path=where)
        )
    return built


def config_from_dict(
    cls: type[T], values: dict[str, Any], source: str = "config", path: str = ""
) -> T:
    """Build ``cls`` from a dict, rejecting unknown keys (a typo must not be silently ignored)
    and values of the wrong type (the error names the option, or the key path ``path.key``
    inside a section). Fields that are dataclasses themselves (sections) are built from their
    mappings the same way, recursively."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        where = path or source
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)} for {cls.__name__}; "
            f"known: {', '.join(sorted(names))}"
        )
    values = build_sections(cls, values, path)
    check_types(cls, values, source, path)
    if not path:
        return cls(**values)
    try:
        return cls(**values)
    except CitiError as err:  # name the section the settings came from
        message = str(err)
        raise type(err)(message if message.startswith(path) else f"{path}: {message}") from None


def read_yaml_mapping(path: str | Path, option: str = "--config") -> dict[str, Any]:
    """A YAML file that must hold a mapping; a missing or malformed file is one error line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{option}: {path} not found")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: malformed YAML") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of option names to values")
    return values


def load_yaml_config(cls: type[T], path: str | Path, **overrides: Any) -> T:
    """Read a YAML config file; ``overrides`` (e.g. explicit CLI options) win over its values."""
    values = read_yaml_mapping(path)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return config_from_dict(cls, values, str(path))


def save_config(config: Any, path: str | Path) -> Path:
    """Write the resolved config as YAML (atomically)."""
    data = dataclasses.asdict(config)
    return write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))


def changed_settings(
    saved_file: str | Path, config: Any, may_change: frozenset[str] = frozenset()
) -> str | None:
    """The fields of ``config`` that differ from the config saved in ``saved_file`` (by
    :func:`save_config`), shown as ``field: old -> new`` (at most four); None when none differ
    or nothing was saved. Fields in ``may_change`` are not compared. Commands that continue
    work in an existing output directory refuse on this, naming what changed."""
    path = Path(saved_file)
    if not path.is_file():
        return None
    try:
        saved = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        raise ConfigError(f"{path}: malformed YAML") from None
    if not isinstance(saved, dict):
        raise ConfigError(f"{path}: expected a mapping of settings")
    # Compared as they would be saved, so tuples and lists (or YAML's own types) do not differ.
    now = yaml.safe_load(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))

    # A field added after the config was saved counts as its default (same settings as then).
    def plain(value: Any) -> Any:  # typed sections (dataclasses) are saved as mappings
        is_section = dataclasses.is_dataclass(value) and not isinstance(value, type)
        return dataclasses.asdict(value) if is_section else value

    def default(f: dataclasses.Field) -> Any:
        if f.default is not dataclasses.MISSING:
            return f.default
        if f.default_factory is not dataclasses.MISSING:
            return f.default_factory()
        return dataclasses.MISSING

    defaults = {
        f.name: plain(value)
        for f in dataclasses.fields(config)
        if (value := default(f)) is not dataclasses.MISSING
    }
    defaults = yaml.safe_load(yaml.safe_dump(defaults, sort_keys=False))
    changed = [k for k in now if k not in may_change and saved.get(k, defaults.get(k)) != now[k]]
    if not changed:
        return None
    return "; ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in changed[:4]) + (
        f"; and {len(changed) - 4} more" if len(changed) > 4 else ""
    )
