"""``citi export``: a trained run as a standard Hugging Face folder (see citi.export)."""

from __future__ import annotations

import argparse

from citi.cli.common import console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a run as a folder transformers and PEFT load alone (+ model card)",
        description="Export a trained run: the base model with its trained base tensors written "
        "in (UCO components, or every weight for FT; loads with AutoModelForCausalLM), the PEFT "
        "adapter in adapter/ (MOLoRA or LoRA; PeftModel.from_pretrained or load_adapter), the "
        "tokenizer, a model card and the run's config. A MOLoRA adapter needs `import citi` "
        "before PEFT loads it.",
    )
    p.add_argument("run", help="a training run directory (or one of its snapshot/final folders)")
    p.add_argument(
        "--out",
        required=True,
        help="export directory (written atomically; must not exist, be empty, or be replaced "
        "with --overwrite; never the run directory, inside it or containing it)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a non-empty --out (atomically: the old one stays until the new is whole)",
    )
    p.add_argument(
        "--results",
        action="append",
        default=[],
        metavar="RESULTS_JSON",
        help="a `citi eval` results.json to put in the model card (repeatable)",
    )
    p.add_argument(
        "--base-model-id",
        help="what the adapter records as its base model (default: the export directory; "
        "--push-to-hub sets the repository id)",
    )
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the folder to this hub repo")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from citi.export import export_run, push_to_hub

    out = export_run(
        args.run,
        args.out,
        results=args.results,
        base_model_id=args.base_model_id or args.push_to_hub,
        dtype=args.dtype,
        overwrite=args.overwrite,
    )
    console.print(f"exported {args.run} to {out}")
    if args.push_to_hub:
        console.print(f"uploaded: {push_to_hub(out, args.push_to_hub)}")
    return 0
