"""Padded share of training micro-batches, shuffled against length-grouped, on a preset's data.

    .venv/bin/python benchmarks/padding.py [--preset cpu] [--data-dir DIR]

Encodes the training data of the preset's LoRA run (tool data only) and of its CITI run (tool
data mixed with general data) as `citi train` does, then counts over every epoch the token
slots of the micro-batches (batch size from the preset) that are padding, with the order
`citi train` uses (citi.train.batching.epoch_order) and with `--group-by-length`. Only the
tokenizer is loaded. Target: grouped <= 10% on the `cpu` preset's data.
"""

from __future__ import annotations

import argparse
import math

from citi.config import config_from_dict
from citi.models.loader import load_tokenizer
from citi.reproduce.preset import load_preset
from citi.train.batching import epoch_order, padding_of
from citi.train.config import TrainConfig
from citi.train.data import build_training_data


def padded_share(lengths: list[int], config, grouped: bool) -> float:
    slots = padded = 0
    epochs = math.ceil(max(s.epochs for s in config.stages()))
    for epoch in range(epochs):
        order = epoch_order(
            len(lengths), config.seed, 0, epoch, config.batch_size, lengths if grouped else None
        )
        for i in range(0, len(order), config.batch_size):
            s, p = padding_of(
                [lengths[j] for j in order[i : i + config.batch_size]], config.batch_size
            )
            slots, padded = slots + s, padded + p
    return padded / slots


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="cpu")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()
    preset = load_preset(args.preset, data_dir=args.data_dir)
    tokenizer = load_tokenizer(preset.model)
    # lora-dm: CITI's mixed data without needing a selection.json
    for run, method in (("lora (tool data)", "lora"), ("citi (mixed data)", "lora-dm")):
        values = {**preset.train_values(method, "", preset.seeds[0]), "method": method}
        values.pop("selection")
        config = config_from_dict(TrainConfig, values, f"preset {args.preset}")
        encoded, _ = build_training_data(config, tokenizer)
        lengths = [len(e.input_ids) for e in encoded]
        shuffled = padded_share(lengths, config, grouped=False)
        grouped = padded_share(lengths, config, grouped=True)
        verdict = "met" if grouped <= 0.10 else "NOT MET"
        print(
            f"{run:<18} {len(lengths):4d} examples, batch {config.batch_size}: padded "
            f"{shuffled:6.1%} shuffled, {grouped:6.1%} grouped (target <= 10%: {verdict})"
        )


if __name__ == "__main__":
    main()
