"""Training and evaluation data for a run: tool data, optionally mixed with general data."""

from __future__ import annotations

import logging
import random

from citi.data import encode_all, load_dataset, mix_datasets
from citi.data.chat_template import chat_template_for
from citi.data.conversations import to_examples
from citi.data.render import Encoded, EncodeStats
from citi.data.user_data import held_out_conversations, is_named, load_examples
from citi.errors import ConfigError

log = logging.getLogger(__name__)

VALIDATION_SEED = "tool-validation"


def split_validation(examples: list, n: int) -> tuple[list, list]:
    """(rest, validation): ``n`` examples held out by a fixed seeded choice that does not depend
    on the training seed, so every seed of a sweep trains without them and scores on them."""
    if n <= 0:
        return examples, []
    if n >= len(examples):
        raise ConfigError(
            f"--validation: {n} held-out examples leave none of the {len(examples)} to train on"
        )
    held = set(random.Random(VALIDATION_SEED).sample(range(len(examples)), n))
    rest = [e for i, e in enumerate(examples) if i not in held]
    return rest, [examples[i] for i in sorted(held)]


def _tool_examples(config, limit=None, seed=None) -> list:
    return load_examples(
        config.tool_dataset,
        "tool",
        data_dir=config.data_dir,
        fmt=config.format,
        supervise=config.supervise,
        eval_fraction=config.eval_fraction,
        limit=limit,
        seed=seed,
    )


def tool_training_examples(config) -> tuple[list, list]:
    """(training tool examples, validation examples) of a run. A user's tool data loses its
    held-out conversations (--eval-fraction) first."""
    if not config.validation:
        tool = _tool_examples(config, limit=config.tool_limit, seed=config.seed)
        return tool, []
    rest, validation = split_validation(_tool_examples(config), config.validation)
    if config.tool_limit is not None and config.tool_limit < len(rest):
        rest = random.Random(config.seed).sample(rest, config.tool_limit)
    return rest, validation


def _require_answers(examples: list, option: str, name: str) -> None:
    if not any(e.target is not None for e in examples):
        raise ConfigError(f"{option}: {name} has no reference answers to train on")


def general_examples(config, ability: str, src: str) -> list:
    return load_examples(
        src,
        ability,
        data_dir=config.data_dir,
        fmt=config.format,
        supervise=config.supervise,
        where="--general-data",
    )


def build_training_data(config, tokenizer) -> tuple[list[Encoded], dict]:
    """Encoded training examples and a summary of what went in (recorded with the run)."""
    tool, _ = tool_training_examples(config)
    _require_answers(tool, "--tool-dataset", config.tool_dataset)
    sources = {config.tool_dataset: len(tool)}
    examples = tool
    if config.use_mix:
        general = {a: general_examples(config, a, d) for a, d in config.general.items()}
        for a, d in config.general.items():
            _require_answers(general[a], "--general", f"{a}={d}")
        examples = mix_datasets(tool, general, config.mix_per_source, config.seed)
        for a, d in config.general.items():
            sources[d] = min(len(general[a]), config.mix_per_source)
    stats = EncodeStats()
    template = chat_template_for(tokenizer, config.chat_template)
    encoded = encode_all(tokenizer, examples, config.max_length, template, stats)
    if not encoded:
        raise ConfigError("no training example has a supervised answer after truncation")
    if stats.dropped:
        log.warning(
            "%d of %d conversations do not fit --max-length %d even without their early "
            "exchanges and are left out (first: %s)",
            len(stats.dropped),
            stats.rows,
            config.max_length,
            stats.dropped[0],
        )
    summary = {
        "sources": sources,
        "examples": len(encoded),
        "tool_examples": sum(e.task_type for e in encoded),
        "tokens": sum(len(e.input_ids) for e in encoded),
        "label_tokens": sum(sum(t != -100 for t in e.labels) for e in encoded),
    }
    if stats.rows:
        summary["conversations"] = stats.to_dict()
    return encoded, summary


def build_eval_data(config, tokenizer) -> dict[str, list[Encoded]]:
    """The first ``eval_limit`` examples of each evaluation dataset, encoded."""
    out = {}
    template = chat_template_for(tokenizer, config.chat_template)
    _, validation = tool_training_examples(config)
    if validation:
        out["tool-validation"] = encode_all(
            tokenizer, [e for e in validation if e.target is not None], config.max_length, template
        )
    if config.eval_data or (config.eval_fraction and not is_named(config.tool_dataset)):
        held = held_out_conversations(
            config.tool_dataset,
            config.eval_data,
            config.eval_fraction,
            data_dir=config.data_dir,
            fmt=config.format,
        )
        examples = to_examples(held, "tool", "held-out", config.supervise)[: config.eval_limit]
        out["tool-heldout"] = encode_all(tokenizer, examples, config.max_length, template)
    for name in config.eval_datasets:
        examples = load_dataset(name, config.data_dir, limit=config.eval_limit)
        out[name] = encode_all(
            tokenizer, [e for e in examples if e.target is not None], config.max_length
        )
        if not out[name]:
            raise ConfigError(f"--eval: dataset {name!r} has no examples with a reference answer")
    return out
