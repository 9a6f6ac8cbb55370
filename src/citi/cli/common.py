"""Options shared by several subcommands, and console output helpers."""

from __future__ import annotations

import argparse

from citi.console import console, err_console

__all__ = ["console", "err_console", "add_model_options", "add_precision"]


def add_model_options(p: argparse.ArgumentParser) -> None:
    from citi.models.loader import ALIASES, DEFAULT_MODEL

    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"alias ({', '.join(ALIASES)}), local directory, .gguf file or hub id "
        f"(default: {DEFAULT_MODEL})",
    )
    p.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16", "float16"],
        help="weights dtype (auto: float32 on CPU, bfloat16 on CUDA)",
    )
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")


def add_precision(p: argparse.ArgumentParser, default: str | None = None) -> None:
    from citi.precision import PRECISION_HELP, PRECISIONS

    p.add_argument("--precision", default=default, choices=list(PRECISIONS), help=PRECISION_HELP)


def add_data_dir(p: argparse.ArgumentParser) -> None:
    from citi.data.datadir import DATA_DIR_HELP

    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)


def load_model_from_args(args: argparse.Namespace):
    from citi.models import load_model

    with err_console.status(f"loading {args.model} ..."):
        return load_model(args.model, dtype=args.dtype, device=args.device)


def document_defaults(parser: argparse.ArgumentParser, *configs: type, only=None) -> None:
    """Append each option's default, read from the config dataclasses (those of the fields in
    ``only``, if given), to its help text: the defaults live in the dataclasses only, never
    copied into the CLI."""
    import dataclasses

    defaults = {}
    for cls in configs:
        for f in dataclasses.fields(cls):
            if only is not None and f.name not in only:
                continue
            if f.default is not dataclasses.MISSING:
                defaults[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                defaults[f.name] = f.default_factory()
    for action in parser._actions:
        if action.dest not in defaults or action.default not in (None, argparse.SUPPRESS):
            continue
        value = defaults[action.dest]
        if value in (None, {}, []):
            continue
        if isinstance(value, dict):
            value = ",".join(f"{k}={v}" for k, v in value.items())
        action.help = f"{action.help or ''} (default: {value})".strip()


def add_user_data(
    p: argparse.ArgumentParser, general: bool = True, heldout: bool = True, supervise: bool = True
) -> None:
    """--tool-data, --general-data, --eval-data/--eval-fraction, --format, --chat-template and
    --supervise: a user's own conversations (see docs/guides/your-data.md)."""
    from citi.data.tool_formats import FORMATS

    p.add_argument(
        "--tool-data",
        metavar="SRC",
        help="tool data: a named dataset, or a .jsonl/.json/.parquet file, a save_to_disk "
        "folder or a hub id (a relative path is also looked for in the data directory)",
    )
    if general:
        p.add_argument(
            "--general-data",
            action="append",
            metavar="[ABILITY=]SRC",
            help="general data (repeatable; replaces the default general datasets); the "
            "ability defaults to the file's stem",
        )
    if heldout:
        p.add_argument(
            "--eval-data",
            metavar="SRC",
            help="held-out conversations (the tool-calls task; see docs/guides/tool-calls-eval.md)",
        )
        p.add_argument(
            "--eval-fraction",
            type=float,
            metavar="F",
            help="hold out this share of the tool data's conversations (a fixed seeded choice, "
            "the same in importance, train and eval)",
        )
    p.add_argument(
        "--format",
        choices=["auto", *FORMATS],
        help="the format of your files (auto: recognised from each file's keys)",
    )
    p.add_argument(
        "--chat-template",
        metavar="FILE",
        help="a Jinja chat template to render with, instead of the model's own (with citi's "
        "Hermes tool prelude when the model's cannot render tools)",
    )
    if supervise:
        p.add_argument(
            "--supervise",
            choices=["all", "last"],
            help="which assistant turns of a conversation are trained on",
        )


def user_data_values(args: argparse.Namespace, keys=("format", "chat_template", "supervise")):
    """The user-data options given on the command line, by config field name."""
    return {
        k: getattr(args, k)
        for k in (*keys, "eval_data", "eval_fraction")
        if getattr(args, k, None) is not None
    }


def _option_type(tp):
    """The one type of ``X`` or ``X | None``."""
    import types
    import typing

    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return inner[0] if len(inner) == 1 else str
    return tp


def _cli_fields(cls: type):
    import dataclasses

    return [f for f in dataclasses.fields(cls) if f.metadata.get("cli", True)]


def add_config_options(parser: argparse.ArgumentParser, cls: type, only=None) -> None:
    """One option per field of the config dataclass ``cls`` (all of them, or those named in
    ``only``) with the field's help text, choices and type (citi.config.setting), so no option
    is written twice. Fields whose option a shared helper added first (add_user_data) are left
    to it. Every default is None, "not given", so that the ``--config`` YAML's values or the
    dataclass's defaults apply (:func:`config_values`); the help shows the dataclass's defaults
    (:func:`document_defaults`), for the options added first too."""
    import typing

    from citi.config import option_name

    hints = typing.get_type_hints(cls)
    taken = {action.dest for action in parser._actions}
    for f in _cli_fields(cls):
        if (only is not None and f.name not in only) or f.name in taken:
            continue
        meta, tp = f.metadata, _option_type(hints[f.name])
        if typing.get_origin(tp) in (list, dict) or tp in (list, dict):
            if "parse" not in meta:  # a programming error, caught by any test that builds the CLI
                raise TypeError(f"{cls.__name__}.{f.name}: a list or map option needs parse=")
        kwargs = {"dest": f.name, "default": None, "help": meta.get("help") or None}
        if "choices" in meta:
            kwargs["choices"] = list(meta["choices"])
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif tp in (int, float) and "parse" not in meta:
            kwargs["type"] = tp
        parser.add_argument(meta.get("option", option_name(f.name)), **kwargs)
    document_defaults(parser, cls, only=only)


def config_values(args: argparse.Namespace, cls: type, only=None) -> dict:
    """The fields of ``cls`` given on the command line (all, or those in ``only``), parsed
    (lists and maps from their text form)."""
    values = {}
    for f in _cli_fields(cls):
        value = getattr(args, f.name, None)
        if value is None or (only is not None and f.name not in only):
            continue
        if value == "" and "parse" in f.metadata:  # an empty list or map: not given
            continue
        values[f.name] = f.metadata["parse"](value) if "parse" in f.metadata else value
    return values


def yaml_defaults(args: argparse.Namespace) -> tuple[dict, str]:
    """The ``--config`` YAML file's values (read once; the command line's options go over them)
    and the source that config errors name."""
    from citi.config import read_yaml_mapping

    if not getattr(args, "config", None):
        return {}, "options"
    return read_yaml_mapping(args.config), str(args.config)
