"""``citi analyze``: the analyses of the paper's Sec. 2 (each writes JSON + PNG)."""

from __future__ import annotations

import argparse

from rich.table import Table

from citi.cli.common import add_precision, console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="analyses of importance, models and routers",
        description="Analyses of the paper's Sec. 2; each writes JSON and PNG.",
    )
    asub = p.add_subparsers(dest="analysis", required=True, metavar="{jaccard,replace,icc}")
    j = asub.add_parser(
        "jaccard",
        help="Jaccard overlap of high/moderate/low importance groups across abilities (Fig. 3)",
        description="Split each ability's importance ranking into thirds and compare the groups "
        "across abilities with the Jaccard index, against the random-ranking expectation.",
    )
    j.add_argument("--importance", required=True, help="importance.json from `citi importance`")
    j.add_argument("--out", required=True, help="output directory (jaccard.json, jaccard.png)")
    j.set_defaults(func=run_jaccard_cmd)
    r = asub.add_parser(
        "replace",
        help="copy top/bottom components of a fine-tuned model into the base model (Table 1)",
        description="Replace the weights of the top (T-x) or bottom (D-x) x% of components by "
        "tool importance with those of a fully fine-tuned model, and evaluate each variant.",
    )
    r.add_argument("--model", default="smollm2-135m-instruct", help="the base model")
    r.add_argument("--tuned", required=True, help="a `citi train --method ft` run directory")
    r.add_argument("--importance", required=True, help="importance.json")
    r.add_argument("--settings", default="T-20,T-50,D-20,D-50")
    r.add_argument("--tasks", default="gsm8k,triviaqa,retention-math,retention-knowledge")
    r.add_argument("--limit", type=int)
    r.add_argument("--batch-size", type=int, default=8)
    r.add_argument("--data-dir")
    r.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    add_precision(r, default="auto")
    r.add_argument("--out", required=True)
    r.set_defaults(func=run_replace_cmd)
    c = asub.add_parser(
        "icc",
        help="cosine similarity of hidden-state increments across abilities (Fig. 2, 8, 9)",
        description="ICC_t = mean change of the last-token hidden state (tuned minus base) at the "
        "input of every attention block and FFN, over instructions followed by a truncated gold "
        "answer; plots cos(ICC_tool, ICC_t) per layer. --reference adds the dashed lines of a "
        "second tuned model (e.g. tuned on code).",
    )
    c.add_argument("--model", default="smollm2-135m-instruct", help="the base model")
    c.add_argument("--tuned", required=True, help="a `citi train` run directory")
    c.add_argument("--reference", help="a second run, e.g. trained on code data")
    c.add_argument(
        "--abilities",
        default="tool=apibank-train,math=gsm8k,code=codealpaca,"
        "knowledge=triviaqa,instruction=alpaca",
    )
    c.add_argument("--samples", type=int, default=64)
    c.add_argument("--max-length", type=int, default=512)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--data-dir")
    c.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    add_precision(c, default="fp32")
    c.add_argument("--out", required=True)
    c.set_defaults(func=run_icc_cmd)


def run_jaccard_cmd(args: argparse.Namespace) -> int:
    from citi.analysis.jaccard import GROUPS, run_jaccard
    from citi.importance.run import check_importance
    from citi.io import read_json

    importance = check_importance(read_json(args.importance), args.importance, abilities=True)
    result = run_jaccard(importance, args.out)
    abilities = result["abilities"]
    for g in GROUPS:
        info = result["groups"][g]
        t = Table(
            title=f"{g} importance third ({info['size']} components): mean off-diagonal "
            f"{info['mean_offdiagonal']:.3f}, random {info['expected_random']:.3f} "
            f"(simulated {info['simulated_random']:.3f})"
        )
        t.add_column("")
        for a in abilities:
            t.add_column(a)
        for a, row in zip(abilities, info["matrix"], strict=True):
            t.add_row(a, *(f"{v:.2f}" for v in row))
        console.print(t)
    console.print(f"wrote {args.out}/jaccard.json and jaccard.png")
    return 0


def run_replace_cmd(args: argparse.Namespace) -> int:
    from citi.analysis.replace import run_replace
    from citi.errors import CitiError
    from citi.evaluation.config import EvalConfig
    from citi.io import read_json

    importance = read_json(args.importance)
    if not isinstance(importance, dict) or "rank_M" not in importance:
        raise CitiError(f"{args.importance}: not an importance.json (no rank_M)")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    shared = ("model", "data_dir", "limit", "batch_size", "device", "precision")
    # checks the task names and limits before any model is loaded
    config = EvalConfig(tasks=tasks, adapter=args.tuned, **{k: getattr(args, k) for k in shared})
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    summary = run_replace(config, importance, settings, args.out)
    t = Table(title="component replacement (Table 1)")
    t.add_column("variant")
    for task in tasks:
        t.add_column(task)
    for variant, res in summary["results"].items():
        t.add_row(variant, *(f"{res.get(task, float('nan')):.3f}" for task in tasks))
    console.print(t)
    console.print(f"wrote {args.out}/replace.json and replace.png")
    return 0


def run_icc_cmd(args: argparse.Namespace) -> int:
    from citi.analysis.icc import run_icc
    from citi.errors import CitiError
    from citi.importance.run import parse_abilities

    abilities = parse_abilities(args.abilities)
    if "tool" not in abilities or len(abilities) < 2:
        raise CitiError("--abilities: needs tool=<dataset> and at least one general ability")
    if args.samples < 1:
        raise CitiError("--samples: must be >= 1")
    if args.max_length < 1:
        raise CitiError(f"--max-length: must be >= 1 token, got {args.max_length}")
    result = run_icc(
        args.model,
        args.tuned,
        abilities,
        args.out,
        args.reference,
        args.data_dir,
        args.samples,
        args.max_length,
        args.seed,
        precision=args.precision,
        device=args.device,
    )
    for ability, per in result["tuned"].items():
        console.print(
            f"{ability}: mean cos(ICC_tool, ICC) attention "
            f"{sum(per['attn']) / len(per['attn']):.3f}, FFN "
            f"{sum(per['ffn']) / len(per['ffn']):.3f}"
        )
    console.print(f"wrote {args.out}/icc.json and icc.png")
    return 0
