"""``citi eval``: evaluate a model (and a trained adapter) on tool and general tasks."""

from __future__ import annotations

import argparse

from citi.cli.common import (
    add_data_dir,
    add_model_options,
    add_precision,
    add_user_data,
    console,
    document_defaults,
    user_data_values,
)


def register(sub: argparse._SubParsersAction) -> None:
    from citi.evaluation.registry import TASKS

    p = sub.add_parser(
        "eval",
        help="evaluate a model on tool-use and general tasks",
        description="Tasks: "
        + "; ".join(f"{t.name}: {t.description}" for t in TASKS.values())
        + ". `citi eval compare DIR ...` prints a side-by-side table of finished evaluations.",
    )
    add_model_options(p)
    add_precision(p, default="auto")
    add_data_dir(p)
    p.add_argument("--adapter", help="a `citi train` run directory (or its final/)")
    p.add_argument("--tasks", help="comma-separated task names")
    p.add_argument("--limit", type=int, help="evaluate only the first N examples of each task")
    p.add_argument("--batch-size", type=int, help="prompts per generation batch")
    p.add_argument("--max-length", type=int, help="for the loglik tasks")
    p.add_argument("--out", help="output directory")
    p.add_argument(
        "--judge-url",
        help="an OpenAI-compatible chat endpoint (e.g. http://localhost:8000/v1) that judges "
        "MT-Bench and ToolAlpaca and simulates ToolAlpaca's APIs; key from CITI_JUDGE_API_KEY",
    )
    p.add_argument("--judge-model", help="the model name to ask at --judge-url")
    p.add_argument(
        "--unsafe-code",
        action="store_true",
        help="run HumanEval's generated code even where no OS-level sandbox works "
        "(without it, such a machine refuses the humaneval task)",
    )
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.compile the model for generation (off by default: "
        "docs/guides/performance.md has the measured ratio)",
    )
    add_user_data(p, general=False, supervise=False)
    p.add_argument("compare", nargs="*", help=argparse.SUPPRESS)
    from citi.evaluation.config import EvalConfig

    document_defaults(p, EvalConfig)
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from citi.errors import CitiError
    from citi.evaluation.tables import markdown_table
    from citi.io import read_json

    if args.compare:
        if args.compare[0] != "compare":
            raise CitiError(f"unexpected argument {args.compare[0]!r}")
        dirs = args.compare[1:]
        if not dirs:
            raise CitiError("eval compare: give one or more evaluation directories")
        from pathlib import Path

        from citi.evaluation.tables import check_results

        results = [check_results(read_json(Path(d) / "results.json"), Path(d)) for d in dirs]
        print(markdown_table(results, dirs), end="")
        return 0
    if not args.tasks or not args.out:
        raise CitiError("eval: --tasks and --out are required")
    from citi.config import config_from_dict
    from citi.evaluation.config import EvalConfig
    from citi.evaluation.runner import evaluate

    values = {
        "tasks": [t.strip() for t in args.tasks.split(",") if t.strip()],
        "model": args.model,
        "adapter": args.adapter,
        "data_dir": args.data_dir,
        "limit": args.limit,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "dtype": args.dtype,
        "device": args.device,
        "precision": args.precision,
        "unsafe_code": args.unsafe_code,
        "compile": args.compile,
        "tool_data": args.tool_data,
        **user_data_values(args, keys=("format", "chat_template")),
    }
    values = {k: v for k, v in values.items() if v is not None}  # unset: the dataclass default
    config = config_from_dict(EvalConfig, values, "options")
    judge = None
    if args.judge_url or args.judge_model:
        from citi.evaluation.judge import Judge

        if not (args.judge_url and args.judge_model):
            raise CitiError("--judge-url and --judge-model go together")
        judge = Judge(args.judge_url, args.judge_model)
    result = evaluate(config, args.out, judge=judge)
    print(markdown_table([result], [args.adapter or args.model]), end="")
    console.print(f"wrote {args.out}/results.json, results.md, predictions/")
    return 0
