"""``citi lm-eval``: lm-evaluation-harness with citi models and offline tasks (see citi.lm_eval)."""

from __future__ import annotations

import argparse

from citi.cli.common import add_data_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lm-eval",
        help="run lm-evaluation-harness on a citi model (+ adapter) and offline tasks",
        description="Everything after the citi options goes to lm-eval's own CLI, with the "
        "`citi` model registered (--model citi --model_args pretrained=SPEC,adapter=RUN,"
        "precision=auto) and the offline tasks of configs/lm_eval/ (gsm8k_offline, "
        "gsm8k_citi_prompt, ifeval_offline, triviaqa_heldout) included. Pass the device with "
        "--device.",
        epilog="example: citi lm-eval --model citi --model_args adapter=runs/citi "
        "--tasks gsm8k_offline --limit 32 --batch_size 8 --device cpu",
        allow_abbrev=False,
    )
    add_data_dir(p)
    # lm-eval's own arguments are whatever citi does not know (see citi.cli.main).
    p.set_defaults(func=run, lm_eval_args=[])


def run(args: argparse.Namespace) -> int:
    from citi.lm_eval import run as run_lm_eval

    return run_lm_eval(args.lm_eval_args, args.data_dir)
