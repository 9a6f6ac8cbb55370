"""``citi train``: train a method (CITI, baselines, ablations) and save its adapter."""

from __future__ import annotations

import argparse

from citi.cli.common import (
    add_config_options,
    add_user_data,
    config_values,
    console,
    yaml_defaults,
)

# The MoloraConfig fields the command line sets (the others stay the method's).
MOLORA_OPTIONS = ("num_experts", "rank", "alpha", "routing_loss", "delta", "beta")


def register(sub: argparse._SubParsersAction) -> None:
    from citi.molora.config import MoloraConfig
    from citi.train.config import TrainConfig
    from citi.train.methods import METHODS

    methods = "; ".join(f"{m.name}: {m.description}" for m in METHODS.values())
    p = sub.add_parser(
        "train",
        help="train CITI, a baseline or an ablation",
        description=f"Train a method on tool data (mixed with general data where the method "
        f"says so). Methods — {methods}. Run under `accelerate launch` for multi-process or "
        f"multi-GPU training.",
    )
    p.add_argument("--config", help="YAML config (configs/<method>.yaml); explicit options win")
    add_user_data(p)
    add_config_options(p, TrainConfig)
    p.add_argument(
        "--epochs",
        help="epochs for every stage or per stage (rp=1,mi=2,uco=1); default: the method's",
    )
    p.add_argument(
        "--lr", help="learning rate for every stage or per stage (mi=2e-4); default: the method's"
    )
    add_config_options(p, MoloraConfig, only=MOLORA_OPTIONS)
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument(
        "--force",
        action="store_true",
        help="with --resume: continue even though settings differ from the saved config.yaml",
    )
    p.set_defaults(func=run_train)


def _per_stage(text: str | None, stages: list[str], option: str) -> dict[str, float] | None:
    """``"2"`` -> every stage 2; ``"mi=2,uco=1"`` -> per stage."""
    from citi.errors import ConfigError

    if text is None:
        return None
    try:
        if "=" not in text:
            return {s: float(text) for s in stages}
        pairs = [part.split("=", 1) for part in text.split(",")]
        if any(len(p) != 2 or not p[0].strip() for p in pairs):
            raise ValueError
        return {k.strip(): float(v) for k, v in pairs}
    except ValueError:
        raise ConfigError(
            f"{option}: expected a number or stage=number pairs, got {text!r}"
        ) from None


def config_from_args(args: argparse.Namespace):
    """The TrainConfig of the command: the ``--config`` YAML's values (read once), the options
    given on the command line winning; unknown keys and bad values fail naming them."""
    from citi.config import config_from_dict
    from citi.errors import ConfigError
    from citi.molora.config import MoloraConfig
    from citi.train.config import TrainConfig
    from citi.train.methods import METHODS

    values, source = yaml_defaults(args)
    given = config_values(args, TrainConfig)
    if args.tool_data:
        if given.get("tool_dataset", args.tool_data) != args.tool_data:
            raise ConfigError("--tool-data and --tool-dataset: give one of them")
        given["tool_dataset"] = args.tool_data
    if args.general_data:
        from citi.data.user_data import parse_general_data

        given["general"] = {**given.get("general", {}), **parse_general_data(args.general_data)}
    method = given.get("method") or values.get("method", "citi")
    if method not in METHODS:
        raise ConfigError(f"--method: unknown method {method!r}")
    stage_names = [s.name for s in METHODS[method].stages]
    for key, option in (("epochs", "--epochs"), ("lr", "--lr")):
        parsed = _per_stage(getattr(args, key), stage_names, option)
        if parsed is not None:
            given[key] = parsed
    molora = config_values(args, MoloraConfig, only=MOLORA_OPTIONS)
    if molora:  # over the YAML's molora: section, key by key
        saved = values.get("molora")
        given["molora"] = {**(saved if isinstance(saved, dict) else {}), **molora}
    return config_from_dict(TrainConfig, {**values, **given}, source)


def run_train(args: argparse.Namespace) -> int:
    import os

    from citi.train.loop import Trainer

    config = config_from_args(args)
    summary = Trainer(config, args.out).run(resume=args.resume, force=args.force)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # one report per run, not one per process
    if "paused_at_step" in summary:
        console.print(
            f"paused after {summary['paused_at_step']} optimizer steps (--max-steps); "
            f"continue with --resume (checkpoint in {summary['checkpoint']})"
        )
        return 0
    console.print(
        f"trained {config.method}: {summary['global_steps']} optimizer steps; "
        f"trainable parameters per stage {summary['trainable_parameters']}"
    )
    for entry in summary["eval"]:
        losses = ", ".join(f"{k} {v:.4f}" for k, v in entry["loss"].items())
        console.print(f"  eval loss after {entry['after']}: {losses}")
    console.print(f"precision {summary['precision']}")
    console.print(f"adapter in {args.out}/final, log in {args.out}/metrics.jsonl")
    return 0
