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
    p.add_argument(
        "--precision",
        default=default,
        choices=["auto", "fp32", "bf16"],
        help="compute precision (auto: bf16 where the hardware runs it fast, CPUs with "
        "AVX-512 BF16 or AMX included; training keeps float32 master weights)",
    )


def add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        default=None,
        help="directory of raw datasets (default: $CITI_DATA_DIR, else ~/.cache/citi/data)",
    )


def load_model_from_args(args: argparse.Namespace):
    from citi.models import load_model

    with err_console.status(f"loading {args.model} ..."):
        return load_model(args.model, dtype=args.dtype, device=args.device)


def document_defaults(parser: argparse.ArgumentParser, *configs: type) -> None:
    """Append each option's default, read from the config dataclasses, to its help text: the
    defaults live in the dataclasses only, never copied into the CLI."""
    import dataclasses

    defaults = {}
    for cls in configs:
        for f in dataclasses.fields(cls):
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
