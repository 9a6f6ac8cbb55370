"""``citi data``: fetch datasets, show them as the model sees them, convert a user's data."""

from __future__ import annotations

import argparse

from citi.cli.common import add_data_dir, console


def add_user_data_format(p: argparse.ArgumentParser, template: bool = True) -> None:
    from citi.data.tool_formats import FORMATS

    p.add_argument("--format", default="auto", choices=["auto", *FORMATS])
    if template:
        p.add_argument("--chat-template", metavar="FILE", help="render with this template")
        p.add_argument("--supervise", default="all", choices=["all", "last"])


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data",
        help="list or download datasets",
        description="Inspect and download the public datasets citi reads.",
    )
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="{fetch,show,convert}")
    f = dsub.add_parser(
        "fetch",
        help="download datasets into the data directory (needs internet)",
        description="Download the public datasets (all, or the NAMES given) into "
        "the data directory, in the raw layout the loaders read.",
    )
    f.add_argument("names", nargs="*", help="dataset names (default: all)")
    add_data_dir(f)
    f.add_argument("--timeout", type=float, default=15.0, help="seconds per connection attempt")
    f.add_argument("--force", action="store_true", help="download files that already exist")
    f.set_defaults(func=run_fetch)
    s = dsub.add_parser(
        "show",
        help="print a few examples of a dataset or of your data",
        description="A named dataset: its first examples as normalised messages. Your data "
        "(a file, folder or hub id): its first conversations as the model will see them, "
        "rendered by the chat template citi trains with, each supervised span between « and ».",
    )
    s.add_argument("name", metavar="SRC", help="a named dataset, or your file/folder/hub id")
    s.add_argument("-n", type=int, default=2, help="how many examples")
    add_data_dir(s)
    from citi.models.loader import DEFAULT_MODEL

    s.add_argument(
        "--model", default=DEFAULT_MODEL, help="whose tokenizer and chat template render it"
    )
    add_user_data_format(s)
    s.set_defaults(func=run_show)
    c = dsub.add_parser(
        "convert",
        help="write your data as citi's canonical JSONL",
        description="Read SRC (messages, sharegpt, hermes, xlam, apibank or alpaca; a file, a "
        "save_to_disk folder or a hub id) and write every conversation in the canonical form "
        "(OpenAI messages with tool_calls and tool turns, plus tools) to --out.",
    )
    c.add_argument("src", metavar="SRC")
    add_data_dir(c)
    add_user_data_format(c, template=False)
    c.add_argument("--out", required=True, help="the .jsonl file to write")
    c.set_defaults(func=run_convert, out_kind="file")


def run_fetch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from citi.data.datadir import default_data_dir
    from citi.data.fetch import fetch

    target = Path(args.data_dir).expanduser() if args.data_dir else None
    if target is None:
        import os

        target = Path(os.environ.get("CITI_DATA_DIR") or default_data_dir())
    written = fetch(args.names, target, timeout=args.timeout, force=args.force)
    console.print(f"{len(written)} file(s) downloaded into {target}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    import json

    from citi.data import load_dataset
    from citi.data.user_data import is_named

    if args.n < 1:
        from citi.errors import CitiError

        raise CitiError(f"-n: must be >= 1, got {args.n}")
    if not is_named(args.name):
        return show_conversations(args)
    for ex in load_dataset(args.name, args.data_dir, limit=args.n):
        console.print_json(
            json.dumps(
                {
                    "ability": ex.ability,
                    "task_type": ex.task_type,
                    "source": ex.source,
                    "target": ex.target,
                    "messages": list(ex.messages),
                },
                ensure_ascii=False,
            )
        )
    return 0


def show_conversations(args: argparse.Namespace) -> int:
    from rich.text import Text

    from citi.data.chat_template import chat_template_for
    from citi.data.conversations import to_examples
    from citi.data.labels import supervised_spans
    from citi.data.user_data import load_source_conversations
    from citi.models.loader import load_tokenizer

    conversations = load_source_conversations(args.name, args.data_dir, args.format, None)
    tokenizer = load_tokenizer(args.model)
    template = chat_template_for(tokenizer, args.chat_template)
    shown = to_examples(conversations[: args.n], "tool", args.name, args.supervise)
    for conv, ex in zip(conversations, shown, strict=False):
        text, spans = supervised_spans(
            tokenizer, template, list(ex.messages), list(ex.tools) or None, ex.supervise, conv.where
        )
        kind = "tool" if conv.is_tool else "general"
        console.print(
            f"── {conv.where} · {kind} · {len(spans)} supervised turn(s) ──", highlight=False
        )
        out, pos = Text(), 0
        for start, end in spans:
            out.append(text[pos:start])
            out.append("«" + text[start:end] + "»", style="bold green")
            pos = end
        console.print(out, highlight=False, markup=False, soft_wrap=True)
    console.print(f"{len(conversations)} conversation(s) in {args.name}", highlight=False)
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from citi.data.conversations import write_conversations
    from citi.data.user_data import load_source_conversations

    conversations = load_source_conversations(args.src, args.data_dir, args.format, None)
    write_conversations(conversations, args.out)
    tools = sum(c.is_tool for c in conversations)
    console.print(
        f"wrote {len(conversations)} conversations ({tools} tool, "
        f"{len(conversations) - tools} general) to {args.out}",
        highlight=False,
    )
    return 0
