"""The ``citi`` command. Subcommands live in their own modules and register themselves here.

Heavy imports (torch, transformers) happen inside the subcommand handlers, so ``--help`` is fast.
Every :class:`~citi.errors.CitiError` becomes one ``citi: error: ...`` line and exit code 2, and
a command that writes an ``--out`` holds its lock (citi.output_lock) while it runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from contextlib import nullcontext

from citi import __version__
from citi.cli import (
    analyze,
    data,
    evaluate,
    export,
    importance,
    info,
    lm_eval,
    plan,
    reproduce,
    serve,
    train,
)
from citi.errors import CitiError

SUBCOMMANDS = [
    info,
    data,
    importance,
    analyze,
    train,
    evaluate,
    lm_eval,
    export,
    serve,
    reproduce,
    plan,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="citi",
        description="CITI: inject tool-use ability into a causal LM without losing its general "
        "abilities (importance analysis, MOLoRA training, evaluation, reports).",
    )
    parser.add_argument("--version", action="version", version=f"citi {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # `citi lm-eval` hands every argument it does not know to lm-eval's own CLI.
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "command", None) != "lm-eval":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.lm_eval_args = [*args.lm_eval_args, *extra]
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        if getattr(args, "device", None):
            # Before any work, for every command that takes --device (gpu0, cuda:7...).
            from citi.models.loader import check_device

            check_device(args.device)
        if not getattr(args, "out", None):
            return int(args.func(args) or 0)
        from citi.io import check_output
        from citi.output_lock import output_lock

        check_output(args.out, getattr(args, "out_kind", "dir"))
        # One writer per --out; the processes of one distributed run are one writer (rank 0).
        lock = output_lock(args.out) if os.environ.get("RANK", "0") == "0" else nullcontext()
        with lock:
            return int(args.func(args) or 0)
    except CitiError as err:
        print(f"citi: error: {err}", file=sys.stderr)
        return err.exit_code
    except Exception as err:
        # The machine refused a write (disk full, quota, a name too long): one line naming the
        # file. Atomic writes (citi.io.atomic_path) have removed their temporaries by now and
        # left every earlier output whole.
        message = write_failure(err, getattr(args, "out", None))
        if message is None:
            raise
        print(f"citi: error: {message}", file=sys.stderr)
        return CitiError.exit_code
    except KeyboardInterrupt:
        print("citi: interrupted", file=sys.stderr)
        return 130


def write_failure(err: BaseException, out: str | None) -> str | None:
    """One line for a write the machine refused, or None when ``err`` is something else."""
    from citi.io import WRITE_ERRNOS, os_error_behind

    os_err = os_error_behind(err)
    if os_err is None or os_err.errno is None:
        return None
    where = os_err.filename or (f"--out {out}" if out else "an output")
    return f"{where}: {WRITE_ERRNOS[os_err.errno]} ({os_err.strerror or 'write failed'})"


if __name__ == "__main__":
    sys.exit(main())
