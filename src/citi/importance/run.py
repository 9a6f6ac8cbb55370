"""Importance for several abilities in one run, with selection and resumable per-ability results.

Each finished ability is written to ``OUT/partial/<ability>.json`` together with the settings that
produced it; a rerun with the same settings reuses it, so an interrupted run resumes where it
stopped. The final importance.json, selection.json and config.yaml are written atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from citi.components import list_components
from citi.config import parse_pairs, setting
from citi.data import PaddingCollator, dataset_files, encode_all
from citi.data.chat_template import chat_template_for
from citi.data.datadir import DATA_DIR_HELP
from citi.data.labels import EncodeStats
from citi.data.user_data import check_user_options, is_named, load_examples
from citi.errors import CitiError, ConfigError
from citi.importance.scores import SCORES, combine_general, importance_sums, normalize, ranks
from citi.io import read_json, write_json_atomic
from citi.models.loader import ALIASES, DEFAULT_MODEL, DTYPES, load_model
from citi.precision import (
    PRECISION_HELP,
    PRECISIONS,
    autocast,
    check_precision,
    resolve_precision,
    training_attention,
)
from citi.selection import SELECTION_RULES, select_components

log = logging.getLogger(__name__)

DEFAULT_ABILITIES = {
    "tool": "apibank-train",
    "math": "gsm8k",
    "code": "codealpaca",
    "knowledge": "triviaqa",
    "instruction": "alpaca",
}


def parse_abilities(text: str) -> dict[str, str]:
    """``tool=apibank-train,math=gsm8k`` -> ``{"tool": "apibank-train", "math": "gsm8k"}``."""
    return parse_pairs(text, "--abilities", "ability=dataset")


@dataclass
class ImportanceConfig:
    model: str = setting(
        DEFAULT_MODEL, help=f"alias ({', '.join(ALIASES)}), directory, .gguf or hub id"
    )
    abilities: dict[str, str] = setting(
        default_factory=lambda: dict(DEFAULT_ABILITIES),
        help="ability=dataset pairs",
        parse=parse_abilities,
    )
    tool_ability: str = setting("tool", help="which ability is the tool ability")
    samples: int = setting(64, help="examples per ability, seeded sample")
    batch_size: int = setting(4, help="examples per forward pass")
    max_length: int = setting(512, help="tokens per example")
    score: str = setting(
        "taylor", help="taylor (the paper) or token-abs (the authors' code)", choices=SCORES
    )
    seed: int = setting(0, help="sampling and random-selection seed")
    molora_ratio: float = setting(0.20, help="share of components for MOLoRA")
    uco_ratio: float = setting(0.10, help="share of components for UCO (0 = none)")
    select: str = setting(
        "top", help="top (CITI), down or random (Table 2)", choices=SELECTION_RULES
    )
    data_dir: str | None = setting(None, help=DATA_DIR_HELP)
    dtype: str = setting("auto", choices=("auto", *DTYPES))
    # fp32 or bf16 autocast (float64 sums either way); see citi.precision
    precision: str = setting("auto", choices=PRECISIONS, help=PRECISION_HELP)
    device: str | None = setting(None)
    # A user's data (an ability's dataset given as a file, folder or hub id; see
    # citi.data.user_data): its format, the supervised turns, a chat template file, and the
    # share of the tool data held out for evaluation (never scored here). Their options are
    # citi.cli.common.add_user_data's, shared with `citi train` and `citi eval`.
    format: str = setting("auto")
    supervise: str = setting("all")
    chat_template: str | None = setting(None)
    eval_fraction: float | None = setting(None)

    def __post_init__(self) -> None:
        if not isinstance(self.abilities, dict) or not self.abilities:
            raise ConfigError("--abilities: give at least one ability=dataset pair")
        if self.tool_ability not in self.abilities:
            raise ConfigError(f"--abilities: the tool ability {self.tool_ability!r} is missing")
        if len(self.abilities) < 2:
            raise ConfigError("--abilities: C_h needs at least one general ability besides tool")
        for opt, value, low in (
            ("--samples", self.samples, 1),
            ("--batch-size", self.batch_size, 1),
            ("--max-length", self.max_length, 16),
        ):
            if not isinstance(value, int) or value < low:
                raise ConfigError(f"{opt}: must be an integer >= {low}, got {value!r}")
        if self.score not in SCORES:
            raise ConfigError(f"--score: unknown score {self.score!r}; choose {', '.join(SCORES)}")
        if self.select not in SELECTION_RULES:
            raise ConfigError(
                f"--select: unknown method {self.select!r}; choose {', '.join(SELECTION_RULES)}"
            )
        if not 0 < self.molora_ratio < 1:
            raise ConfigError(f"--molora-ratio: must be in (0, 1), got {self.molora_ratio}")
        check_precision(self.precision)
        check_user_options(self.format, self.supervise, self.eval_fraction)
        if not 0 <= self.uco_ratio < 1:
            raise ConfigError(f"--uco-ratio: must be in [0, 1), got {self.uco_ratio}")

    def scoring_key(self, ability: str) -> str:
        """What determines one ability's raw scores (not the selection settings)."""
        parts = dict(
            model=self.model,
            dataset=self.abilities[ability],
            samples=self.samples,
            batch_size=self.batch_size,
            max_length=self.max_length,
            seed=self.seed,
            dtype=self.dtype,
            precision=self.precision,
        )
        if not is_named(self.abilities[ability]):  # settings that change a user source's rows
            parts.update(
                format=self.format,
                supervise=self.supervise,
                chat_template=self.chat_template,
                eval_fraction=self.eval_fraction if ability == self.tool_ability else None,
            )
        return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def ability_examples(config: ImportanceConfig, ability: str) -> list:
    """The seeded sample an ability is scored on. A user's tool data gives its tool rows, less
    the conversations held out for evaluation; the same rows training uses."""
    tool = ability == config.tool_ability
    return load_examples(
        config.abilities[ability],
        ability,
        data_dir=config.data_dir,
        fmt=config.format,
        supervise=config.supervise,
        eval_fraction=config.eval_fraction if tool else None,
        limit=config.samples,
        seed=config.seed,
        where="--tool-data" if tool else "--general-data",
        tool_only=tool,
    )


def _score_ability(loaded, config: ImportanceConfig, ability: str, components: list[str]) -> dict:
    name = config.abilities[ability]
    examples = ability_examples(config, ability)
    template = chat_template_for(loaded.tokenizer, config.chat_template)
    stats = EncodeStats()
    encoded = encode_all(loaded.tokenizer, examples, config.max_length, template, stats)
    if not encoded:
        too_long = f" ({len(stats.dropped)} longer than --max-length)" if stats.dropped else ""
        raise ConfigError(
            f"--abilities: dataset {name!r} has no examples with a supervised answer{too_long}"
        )
    # Scores are sums over examples, so order is free: sort by length to minimise padding.
    encoded.sort(key=lambda e: len(e.input_ids))
    collate = PaddingCollator(loaded.tokenizer.pad_token_id)
    bs = config.batch_size
    batches = (collate(encoded[i : i + bs]) for i in range(0, len(encoded), bs))
    start = time.perf_counter()
    hooks = importance_sums(
        loaded.model,
        batches,
        components,
        progress=f"importance {ability}",
        total=(len(encoded) + bs - 1) // bs,
    )
    return {
        "dataset": name,
        "examples": len(encoded),
        "tokens": sum(len(e.input_ids) for e in encoded),
        "label_tokens": sum(sum(t != -100 for t in e.labels) for e in encoded),
        "seconds": round(time.perf_counter() - start, 2),
        **({"conversations": stats.to_dict()} if stats.rows else {}),
        "scores": {s: hooks.scores(s) for s in SCORES},
    }


def build_result(config: ImportanceConfig, model_name: str, per_ability: dict[str, dict]) -> dict:
    """importance.json content from the raw per-ability scores (a pure function of its inputs)."""
    normalized = {a: normalize(r["scores"][config.score]) for a, r in per_ability.items()}
    m = normalized[config.tool_ability]
    c = combine_general(normalized, tool=config.tool_ability)
    return {
        "model": model_name,
        "settings": dataclasses.asdict(config),
        "components": list(next(iter(per_ability.values()))["scores"][config.score]),
        "abilities": {
            a: {**r, "normalized": normalized[a], "rank": ranks(normalized[a])}
            for a, r in per_ability.items()
        },
        "M": m,
        "C": c,
        "rank_M": ranks(m),
        "rank_C": ranks(c),
    }


def _score_map_problem(values, label: str) -> str | None:
    if not isinstance(values, dict) or not values:
        return f"{label} is not a map of component scores"
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            return f"{label} score of {name} is {v!r}, not a finite number >= 0"
    return None


def check_importance(result, path, abilities: bool = False) -> dict:
    """An importance.json read back from disk, checked by shape before anything uses it: M and C
    (or, with ``abilities``, two or more per-ability normalised scores) as finite, non-negative
    scores over the same components. One error line naming the file otherwise."""
    if not isinstance(result, dict):
        raise CitiError(f"{path}: not an importance.json (expected an object)")
    if abilities:
        per = result.get("abilities")
        if not isinstance(per, dict) or len(per) < 2:
            raise CitiError(
                f"{path}: the Jaccard analysis needs per-ability scores of 2+ abilities"
            )
        maps: dict[str, Any] = {  # JSON values, checked by _score_map_problem below
            a: (info or {}).get("normalized") if isinstance(info, dict) else None
            for a, info in per.items()
        }
    else:
        if "M" not in result or "C" not in result:
            raise CitiError(f"{path}: not an importance.json (no M and C scores)")
        maps = {"M": result["M"], "C": result["C"]}
    keys = None
    for label, values in maps.items():
        problem = _score_map_problem(values, label)
        if problem:
            raise CitiError(f"{path}: {problem}")
        if keys is not None and set(values) != keys:
            raise CitiError(f"{path}: {label} scores another set of components than the rest")
        keys = set(values)
    return result


def _reusable(saved, key: str, components: list[str], path: Path) -> bool:
    """Whether a partial result can stand in for scoring an ability again. One written with
    other settings is recomputed; one with this run's key but a wrong shape (strings for scores,
    missing or extra components, non-finite values) is refused like any other malformed input."""
    if not isinstance(saved, dict) or saved.get("key") != key:
        return False
    result = saved.get("result")
    scores = result.get("scores") if isinstance(result, dict) else None
    for score in SCORES:
        values = scores.get(score) if isinstance(scores, dict) else None
        if not isinstance(values, dict) or list(values) != components:
            problem = f"{score} scores do not list the model's {len(components)} components"
            break
        bad = [
            c
            for c, v in values.items()
            if isinstance(v, bool)
            or not isinstance(v, int | float)
            or not math.isfinite(v)
            or v < 0
        ]
        if bad:
            problem = f"{score} score of {bad[0]} is {values[bad[0]]!r}, not a finite number >= 0"
            break
    else:
        return True
    raise CitiError(
        f"{path}: malformed partial importance result ({problem}); delete it to rescore"
    )


def run_importance(config: ImportanceConfig, out_dir: str | Path) -> dict:
    out = Path(out_dir)
    # Fail on a missing dataset before any model is loaded or any ability is scored.
    for dataset in config.abilities.values():
        if is_named(dataset):
            dataset_files(dataset, config.data_dir)
    for ability, dataset in config.abilities.items():
        sample = ability_examples(config, ability)
        if not any(e.target is not None for e in sample):
            raise ConfigError(
                f"--abilities: {ability}={dataset} has no reference answers to score with"
            )
    loaded = load_model(config.model, dtype=config.dtype, device=config.device)
    # Resolved once, so the partial results' keys and the saved config name what ran.
    config = dataclasses.replace(
        config, precision=resolve_precision(config.precision, loaded.device)
    )
    components = [c.name for c in list_components(loaded.model)]
    per_ability = {}
    for ability in config.abilities:
        partial = out / "partial" / f"{ability}.json"
        key = config.scoring_key(ability)
        if partial.is_file():
            saved = read_json(partial)
            if _reusable(saved, key, components, partial):
                log.info("importance %s: reusing %s", ability, partial)
                per_ability[ability] = saved["result"]
                continue
        with (
            autocast(config.precision, loaded.device),
            training_attention(loaded.model, config.precision, loaded.device),
        ):
            per_ability[ability] = _score_ability(loaded, config, ability, components)
        write_json_atomic(partial, {"key": key, "result": per_ability[ability]})
    result = build_result(config, config.model, per_ability)
    selection = select_components(
        result["M"], result["C"], config.molora_ratio, config.uco_ratio, config.select, config.seed
    )
    selection.info = {
        "importance": str(out / "importance.json"),
        "model": config.model,
        "score": config.score,
        "n_components": len(components),
    }
    write_json_atomic(out / "importance.json", result)
    write_json_atomic(out / "selection.json", selection.to_dict())
    from citi.config import save_config

    save_config(config, out / "config.yaml")
    return result
