"""``citi reproduce``: the whole pipeline from a preset, resumable."""

from __future__ import annotations

import argparse

from citi.cli.common import add_precision, console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce",
        help="importance, training, evaluation, analyses and a report, from a preset",
        description="Run importance → selection → training of the preset's methods → evaluation "
        "→ analyses, and write report.md. A rerun skips finished steps. Presets: tiny (the "
        "README's run command), smol, paper (GPU), or a path to a YAML file.",
    )
    p.add_argument("--preset", default="tiny", help="preset name or YAML path (default tiny)")
    p.add_argument("--model", help="override the preset's model")
    p.add_argument("--data-dir", help="override the data directory")
    p.add_argument("--methods", help="comma-separated methods to train (base is always evaluated)")
    p.add_argument("--out", required=True, help="report directory, e.g. reports/tiny")
    p.add_argument(
        "--judge-url",
        help="OpenAI-compatible endpoint for the judged tasks (mtbench, toolalpaca-*); "
        "key from CITI_JUDGE_API_KEY",
    )
    p.add_argument("--judge-model", help="model name at --judge-url")
    add_precision(p)
    p.add_argument(
        "--force",
        action="store_true",
        help="continue in an --out made with other settings, keeping its finished steps "
        "(without it such a rerun is refused, naming what changed)",
    )
    p.set_defaults(func=run_reproduce)


def run_reproduce(args: argparse.Namespace) -> int:
    from citi.reproduce import Pipeline, load_preset

    overrides = {"model": args.model, "data_dir": args.data_dir, "precision": args.precision}
    if args.judge_url or args.judge_model:
        overrides["judge"] = {"url": args.judge_url, "model": args.judge_model}
    if args.methods:
        overrides["methods"] = [m.strip() for m in args.methods.split(",") if m.strip()]
    config = load_preset(args.preset, **overrides)
    report = Pipeline(config, args.out, force=args.force).run()
    console.print(f"report: {report}")
    return 0
