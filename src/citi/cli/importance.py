"""``citi importance`` and ``citi select``: score components, then choose MOLoRA and UCO sets."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from citi.cli.common import (
    add_config_options,
    add_user_data,
    config_values,
    console,
    yaml_defaults,
)

# The ImportanceConfig fields `citi select` takes: how components are chosen from the scores.
SELECT_OPTIONS = ("molora_ratio", "uco_ratio", "select", "seed")


def register(sub: argparse._SubParsersAction) -> None:
    from citi.importance.run import ImportanceConfig

    p = sub.add_parser(
        "importance",
        help="score every component's importance per ability and select components",
        description="Gradient-based importance of every linear component on a tool dataset and on "
        "general datasets (paper Eq. 4, 10); writes importance.json, selection.json and "
        "config.yaml to --out. Resumes finished abilities after an interruption.",
    )
    p.add_argument("--config", help="YAML file with these options (explicit options win)")
    add_user_data(p)
    add_config_options(p, ImportanceConfig)
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=run_importance_cmd)

    s = sub.add_parser(
        "select",
        help="re-select MOLoRA/UCO components from an importance.json",
        description="Choose components from existing scores without recomputing them.",
    )
    s.add_argument("--importance", required=True, help="importance.json from `citi importance`")
    add_config_options(s, ImportanceConfig, only=SELECT_OPTIONS)
    s.add_argument("--out", required=True, help="selection.json to write")
    s.set_defaults(func=run_select_cmd, out_kind="file")


def _config_from_args(args: argparse.Namespace):
    """The ImportanceConfig of the command: the ``--config`` YAML's values (read once), the
    options given winning. --tool-data and --general-data replace the abilities' sources: the
    tool ability's, and all the general ones."""
    from citi.config import config_from_dict
    from citi.data.user_data import parse_general_data
    from citi.importance.run import ImportanceConfig

    values, source = yaml_defaults(args)
    given = config_values(args, ImportanceConfig)
    if args.tool_data or args.general_data:
        base = given.get("abilities") or values.get("abilities") or ImportanceConfig().abilities
        if isinstance(base, dict):  # else the YAML's malformed value fails below, named
            tool = given.get("tool_ability") or values.get("tool_ability") or "tool"
            general = (
                parse_general_data(args.general_data)
                if args.general_data
                else {a: d for a, d in base.items() if a != tool}
            )
            given["abilities"] = {tool: args.tool_data or base.get(tool), **general}
    return config_from_dict(ImportanceConfig, {**values, **given}, source)


def print_summary(result: dict, selection: dict, top: int = 5) -> None:
    from citi.importance.scores import ranks

    rank_m = result.get("rank_M") or ranks(result["M"])
    order = sorted(rank_m, key=rank_m.__getitem__)
    score = (result.get("settings") or {}).get("score", "?")
    t = Table(title=f"importance ({score}) — M_h: tool, C_h: general sum")
    for col in ("rank", "component", "M_h", "C_h", "set"):
        t.add_column(col)
    molora, uco = set(selection["molora"]), set(selection["uco"])
    shown = order[:top] + order[-top:] if len(order) > 2 * top else order
    for name in shown:
        tag = "MOLoRA" if name in molora else "UCO" if name in uco else ""
        t.add_row(
            str(rank_m[name]), name, f"{result['M'][name]:.4f}", f"{result['C'][name]:.4f}", tag
        )
    console.print(t)
    console.print(f"MOLoRA: {len(molora)} components; UCO: {len(uco)} components")


def run_importance_cmd(args: argparse.Namespace) -> int:
    from citi.importance.run import run_importance
    from citi.io import read_json

    config = _config_from_args(args)
    result = run_importance(config, args.out)
    print_summary(result, read_json(Path(args.out) / "selection.json"))
    console.print(f"wrote {args.out}/importance.json, selection.json, config.yaml")
    return 0


def run_select_cmd(args: argparse.Namespace) -> int:
    from citi.config import config_from_dict
    from citi.importance.run import ImportanceConfig, check_importance
    from citi.io import read_json, write_json_atomic
    from citi.selection import select_components

    result = check_importance(read_json(args.importance), args.importance)
    # The options given over the config dataclass's defaults, checked as `citi importance` would.
    settings = config_from_dict(ImportanceConfig, config_values(args, ImportanceConfig), "options")
    selection = select_components(
        result["M"],
        result["C"],
        settings.molora_ratio,
        settings.uco_ratio,
        settings.select,
        settings.seed,
    )
    selection.info = {"importance": str(args.importance), "model": result.get("model")}
    write_json_atomic(args.out, selection.to_dict())
    print_summary(result, selection.to_dict())
    return 0
