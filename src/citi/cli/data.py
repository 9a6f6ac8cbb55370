"""``citi data``: list and fetch datasets."""

from __future__ import annotations

import argparse

from citi.cli.common import add_data_dir, console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data",
        help="list or download datasets",
        description="Inspect and download the public datasets citi reads.",
    )
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="{fetch,show}")
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
        help="print a few rendered examples of a dataset",
        description="Print the first examples of a dataset as normalised messages.",
    )
    s.add_argument("name")
    s.add_argument("-n", type=int, default=2, help="how many examples")
    add_data_dir(s)
    s.set_defaults(func=run_show)


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

    if args.n < 1:
        from citi.errors import CitiError

        raise CitiError(f"-n: must be >= 1, got {args.n}")
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
