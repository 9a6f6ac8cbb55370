"""``citi plan``: per-device memory of a method under DDP, ZeRO-2 and FSDP (see citi.plan)."""

from __future__ import annotations

import argparse

from rich.table import Table

from citi.cli.common import console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="estimate per-device memory for DDP, ZeRO-2 and FSDP, and what fits",
        description="Per-device memory of training a method (weights, gradients, optimizer "
        "state, activations with and without gradient checkpointing) under DDP, DeepSpeed "
        "ZeRO-2 and FSDP, from the model's config alone (no weights are loaded).",
    )
    p.add_argument("--model", default="llama-3-8b-instruct", help="known alias or config dir")
    p.add_argument("--method", default="citi", choices=["citi", "ft", "lora", "lora-dm"])
    p.add_argument("--selection", help="selection.json (default: the largest components)")
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=4, help="per device")
    p.add_argument("--devices", type=int, default=4)
    p.add_argument("--device-memory", type=float, default=80.0, help="GiB per device")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from citi.plan import GIB, check_sizes, model_config, model_shape, plan
    from citi.selection import read_selection

    selection = read_selection(args.selection) if args.selection else None
    check_sizes(
        max_length=args.max_length,
        batch_size=args.batch_size,
        devices=args.devices,
        device_gib=args.device_memory,
    )
    shape = model_shape(model_config(args.model), f"--model {args.model}")
    result = plan(
        shape,
        args.method,
        args.max_length * args.batch_size,
        args.devices,
        args.device_memory,
        selection,
    )
    table = Table(
        title=f"{args.model}, {args.method}: {result['trainable']:,} trainable of "
        f"{result['total_parameters']:,} parameters; {args.batch_size} x {args.max_length} "
        f"tokens per device, {args.devices} x {args.device_memory:g} GiB"
    )
    for col in (
        "strategy",
        "checkpointing",
        "weights",
        "grads",
        "optimizer",
        "activations",
        "logits",
        "total GiB",
        "fits",
    ):
        table.add_column(col)
    for name, per in result["strategies"].items():
        for mode, parts in per.items():
            table.add_row(
                name,
                "yes" if mode == "checkpointing" else "no",
                *(
                    f"{parts[k] / GIB:.1f}"
                    for k in ("weights", "gradients", "optimizer", "activations", "logits", "total")
                ),
                "yes" if parts["fits"] else "no",
            )
    console.print(table)
    return 0
