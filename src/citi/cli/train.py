"""``citi train``: train a method (CITI, baselines, ablations) and save its adapter."""

from __future__ import annotations

import argparse

from citi.cli.common import (
    add_data_dir,
    add_precision,
    add_user_data,
    console,
    document_defaults,
    user_data_values,
)


def register(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--method", choices=list(METHODS))
    p.add_argument("--model")
    p.add_argument("--selection", help="selection.json from `citi importance`")
    add_data_dir(p)
    p.add_argument("--tool-dataset", help="tool training data (the same as --tool-data)")
    add_user_data(p)
    p.add_argument("--tool-limit", type=int, help="use only N tool examples (seeded sample)")
    p.add_argument(
        "--mix",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mix general data in (default: the method's choice)",
    )
    p.add_argument("--general", help="ability=dataset pairs of general data to mix in")
    p.add_argument("--mix-per-source", type=int, help="general examples per source")
    p.add_argument("--max-length", type=int)
    p.add_argument("--batch-size", type=int, help="per device")
    p.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step")
    p.add_argument(
        "--epochs",
        help="epochs for every stage or per stage (rp=1,mi=2,uco=1); default: the method's",
    )
    p.add_argument(
        "--lr", help="learning rate for every stage or per stage (mi=2e-4); default: the method's"
    )
    p.add_argument("--warmup-ratio", type=float)
    p.add_argument(
        "--lr-schedule",
        choices=("cosine", "constant"),
        help="learning rate after the warmup: cosine decay to 0 (default) or constant",
    )
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--max-grad-norm", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--save-every", type=int, help="optimizer steps between checkpoints")
    p.add_argument(
        "--max-steps",
        type=int,
        help="pause after N optimizer steps in all, with a checkpoint; --resume continues",
    )
    p.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.compile the decoder (off by default: docs/guides/performance.md has the "
        "measured ratio)",
    )
    p.add_argument(
        "--group-by-length",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="micro-batches of examples of similar length: less padding, same examples "
        "(seeded, resumable)",
    )
    p.add_argument(
        "--sharding",
        choices=["none", "fsdp"],
        help="fsdp: shard weights, gradients and optimizer state over the processes (FSDP2; "
        "launch with torchrun or accelerate, see configs/accelerate/)",
    )
    p.add_argument(
        "--eval",
        dest="eval_datasets",
        help="datasets whose mean label loss is logged before and after each stage",
    )
    p.add_argument("--eval-limit", type=int, help="examples per eval dataset")
    p.add_argument(
        "--snapshots",
        help="fractions of all optimizer steps at which the adapter is also saved "
        "(e.g. 0.25,0.5,0.75), under OUT/snapshots/",
    )
    p.add_argument(
        "--validation",
        type=int,
        help="tool examples held out of training (a fixed seeded choice); their loss is logged "
        "as tool-validation before and after each stage",
    )
    p.add_argument("--num-experts", type=int)
    p.add_argument("--rank", type=int)
    p.add_argument("--alpha", type=float)
    p.add_argument("--routing-loss", choices=["cv2", "paper"])
    p.add_argument("--delta", type=float, help="the paper's lambda (0.95)")
    p.add_argument("--beta", type=float, help="routing-loss weight (0.01)")
    add_precision(p)
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--device")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument(
        "--force",
        action="store_true",
        help="with --resume: continue even though settings differ from the saved config.yaml",
    )
    from citi.molora.config import MoloraConfig
    from citi.train.config import TrainConfig

    document_defaults(p, TrainConfig, MoloraConfig)
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
    from citi.config import config_from_dict, load_yaml_config
    from citi.errors import ConfigError
    from citi.importance.run import parse_abilities
    from citi.train.config import TrainConfig
    from citi.train.methods import METHODS

    keys = (
        "method",
        "model",
        "selection",
        "data_dir",
        "tool_dataset",
        "tool_limit",
        "mix",
        "mix_per_source",
        "max_length",
        "batch_size",
        "grad_accum",
        "warmup_ratio",
        "lr_schedule",
        "weight_decay",
        "max_grad_norm",
        "seed",
        "save_every",
        "max_steps",
        "gradient_checkpointing",
        "group_by_length",
        "compile",
        "sharding",
        "eval_limit",
        "validation",
        "dtype",
        "precision",
        "device",
    )
    values = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    if args.general:
        values["general"] = parse_abilities(args.general)
    values.update(user_data_values(args))
    if args.tool_data:
        if args.tool_dataset and args.tool_dataset != args.tool_data:
            raise ConfigError("--tool-data and --tool-dataset: give one of them")
        values["tool_dataset"] = args.tool_data
    if args.general_data:
        from citi.data.user_data import parse_general_data

        values["general"] = {**values.get("general", {}), **parse_general_data(args.general_data)}
    if args.snapshots:
        try:
            values["snapshots"] = [float(x) for x in args.snapshots.split(",") if x.strip()]
        except ValueError:
            raise ConfigError(
                f"--snapshots: expected fractions like 0.25,0.5, got {args.snapshots!r}"
            ) from None
    if args.eval_datasets:
        values["eval_datasets"] = [d.strip() for d in args.eval_datasets.split(",") if d.strip()]
    molora = {
        k: getattr(args, k)
        for k in ("num_experts", "rank", "alpha", "routing_loss", "delta", "beta")
        if getattr(args, k) is not None
    }
    if args.config:
        from citi.config import read_yaml_mapping

        method = values.get("method") or read_yaml_mapping(args.config).get("method", "citi")
    else:
        method = values.get("method", "citi")
    if method not in METHODS:
        raise ConfigError(f"--method: unknown method {method!r}")
    stage_names = [s.name for s in METHODS[method].stages]
    for key, option in (("epochs", "--epochs"), ("lr", "--lr")):
        parsed = _per_stage(getattr(args, key), stage_names, option)
        if parsed is not None:
            values[key] = parsed
    if args.config:
        config = load_yaml_config(TrainConfig, args.config, **values)
        if molora:
            config.molora = {**config.molora, **molora}
            config.__post_init__()
        return config
    if molora:
        values["molora"] = molora
    return config_from_dict(TrainConfig, values, "options")


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
