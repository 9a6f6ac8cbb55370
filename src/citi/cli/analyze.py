"""``citi analyze``: the analyses of the paper's Sec. 2 (each writes JSON + PNG)."""

from __future__ import annotations

import argparse

from rich.table import Table

from citi.cli.common import console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="analyses of importance, models and routers",
        description="Analyses of the paper's Sec. 2; each writes JSON and PNG.",
    )
    asub = p.add_subparsers(dest="analysis", required=True, metavar="{jaccard}")
    j = asub.add_parser(
        "jaccard",
        help="Jaccard overlap of high/moderate/low importance groups across abilities (Fig. 3)",
        description="Split each ability's importance ranking into thirds and compare the groups "
        "across abilities with the Jaccard index, against the random-ranking expectation.",
    )
    j.add_argument("--importance", required=True, help="importance.json from `citi importance`")
    j.add_argument("--out", required=True, help="output directory (jaccard.json, jaccard.png)")
    j.set_defaults(func=run_jaccard_cmd)


def run_jaccard_cmd(args: argparse.Namespace) -> int:
    from citi.analysis.jaccard import GROUPS, run_jaccard
    from citi.errors import CitiError
    from citi.io import read_json

    importance = read_json(args.importance)
    if not isinstance(importance, dict) or "abilities" not in importance:
        raise CitiError(f"{args.importance}: not an importance.json (no per-ability scores)")
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
