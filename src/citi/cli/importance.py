"""``citi importance`` and ``citi select``: score components, then choose MOLoRA and UCO sets."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from citi.cli.common import (
    add_data_dir,
    add_precision,
    add_user_data,
    console,
    document_defaults,
    user_data_values,
)


def register(sub: argparse._SubParsersAction) -> None:
    from citi.importance.run import ImportanceConfig
    from citi.importance.scores import SCORES
    from citi.models.loader import ALIASES
    from citi.selection import SELECTION_RULES

    p = sub.add_parser(
        "importance",
        help="score every component's importance per ability and select components",
        description="Gradient-based importance of every linear component on a tool dataset and on "
        "general datasets (paper Eq. 4, 10); writes importance.json, selection.json and "
        "config.yaml to --out. Resumes finished abilities after an interruption.",
    )
    p.add_argument("--config", help="YAML file with these options (explicit options win)")
    p.add_argument(
        "--model",
        help=f"alias ({', '.join(ALIASES)}), directory, .gguf or hub id",
    )
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"])
    add_precision(p)
    p.add_argument("--device")
    add_data_dir(p)
    p.add_argument("--abilities", help="ability=dataset pairs")
    add_user_data(p)
    p.add_argument("--tool-ability", help="which ability is the tool ability")
    p.add_argument("--samples", type=int, help="examples per ability, seeded sample")
    p.add_argument("--batch-size", type=int, help="examples per forward pass")
    p.add_argument("--max-length", type=int, help="tokens per example")
    p.add_argument(
        "--score", choices=SCORES, help="taylor (the paper) or token-abs (the authors' code)"
    )
    p.add_argument("--seed", type=int, help="sampling and random-selection seed")
    _add_selection_options(p, SELECTION_RULES)
    p.add_argument("--out", required=True, help="output directory")
    document_defaults(p, ImportanceConfig)
    p.set_defaults(func=run_importance_cmd)

    s = sub.add_parser(
        "select",
        help="re-select MOLoRA/UCO components from an importance.json",
        description="Choose components from existing scores without recomputing them.",
    )
    s.add_argument("--importance", required=True, help="importance.json from `citi importance`")
    _add_selection_options(s, SELECTION_RULES)
    s.add_argument("--seed", type=int, help="random-selection seed")
    s.add_argument("--out", required=True, help="selection.json to write")
    document_defaults(s, ImportanceConfig)
    s.set_defaults(func=run_select_cmd, out_kind="file")


def _add_selection_options(p: argparse.ArgumentParser, methods) -> None:
    p.add_argument("--molora-ratio", type=float, help="share of components for MOLoRA")
    p.add_argument("--uco-ratio", type=float, help="share of components for UCO (0 = none)")
    p.add_argument("--select", choices=methods, help="top (CITI), down or random (Table 2)")


def _config_from_args(args: argparse.Namespace):
    from citi.config import config_from_dict, load_yaml_config
    from citi.data.user_data import parse_general_data
    from citi.importance.run import ImportanceConfig, parse_abilities

    keys = (
        "model",
        "dtype",
        "precision",
        "device",
        "data_dir",
        "tool_ability",
        "samples",
        "batch_size",
        "max_length",
        "score",
        "seed",
        "molora_ratio",
        "uco_ratio",
        "select",
    )
    values = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    if args.abilities:
        values["abilities"] = parse_abilities(args.abilities)
    values.update(user_data_values(args))
    values.pop("eval_data", None)  # importance never reads the evaluation data
    if args.tool_data or args.general_data:
        # Your data replaces the defaults: the tool ability's source, and all general abilities.
        base = values.get("abilities") or dict(ImportanceConfig().abilities)
        if args.config and "abilities" not in values:
            from citi.config import read_yaml_mapping

            base = read_yaml_mapping(args.config).get("abilities") or base
        tool = values.get("tool_ability") or "tool"
        general = (
            parse_general_data(args.general_data)
            if args.general_data
            else {a: d for a, d in base.items() if a != tool}
        )
        values["abilities"] = {tool: args.tool_data or base.get(tool), **general}
    if args.config:
        return load_yaml_config(ImportanceConfig, args.config, **values)
    return config_from_dict(ImportanceConfig, values, "options")


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
    from citi.importance.run import ImportanceConfig, check_importance
    from citi.io import read_json, write_json_atomic
    from citi.selection import select_components

    result = check_importance(read_json(args.importance), args.importance)
    default = ImportanceConfig()  # the defaults live in the config dataclass only

    def given(name):
        value = getattr(args, name)
        return getattr(default, name) if value is None else value

    selection = select_components(
        result["M"],
        result["C"],
        given("molora_ratio"),
        given("uco_ratio"),
        given("select"),
        given("seed"),
    )
    selection.info = {"importance": str(args.importance), "model": result.get("model")}
    write_json_atomic(args.out, selection.to_dict())
    print_summary(result, selection.to_dict())
    return 0
