"""One learning-rate tuning protocol for every method (a preset's ``tune:`` section).

A comparison between methods is fair only when each got the same chance to be tuned. Here:

- the same grid for every method: each factor of ``tune.lr_scale`` multiplies all of a method's
  stage learning rates (the paper's per-stage rates, or the preset's), so FT, LoRA and CITI's
  three stages are each searched over the same relative range around their own defaults;
- LoRA and MOLoRA adapters keep alpha = 2 x rank (checked before any work), so no method gets a
  hidden extra scale to tune;
- one criterion, stated before the runs: the mean label loss (tool NLL) on the held-out tool
  validation split (``train.validation`` examples of the tool training data, never a test set)
  after the candidate's last stage; every candidate of a method trains the same steps on the
  same data, so they are compared at equal steps; ties go to the smaller factor;
- on the tuning seed, which the confirmatory ``seeds`` may not contain, so the runs that decide
  the verdicts never share the noise of the run that chose their learning rate.

The choice per method is written to ``analysis/tune.json`` and stated in the report.
"""

from __future__ import annotations

import math

from citi.errors import ConfigError

CRITERION = (
    "mean label loss (tool NLL) on the held-out tool validation split after the last stage, "
    "equal steps within a method (lower is better; ties: the smaller factor)"
)


def check_tune(config) -> None:
    """The protocol's rules on a preset with a ``tune:`` section; one error naming the rule."""
    tune = config.tune
    if tune is None:
        return
    if tune.seed in config.seeds:
        raise ConfigError(
            f"tune.seed: {tune.seed} is also a confirmatory seed (seeds: {config.seeds}); "
            "the tuning seed must be excluded from them"
        )
    unknown = [m for m in tune.methods or [] if m not in config.methods]
    if unknown:
        raise ConfigError(f"tune.methods: {', '.join(unknown)} not in methods")
    if not {**config.train, **tune.train}.get("validation", 0):
        raise ConfigError("tune: needs a held-out split (train.validation: N) to score on")
    for method in tuned_methods(config):
        _check_alpha(config, method)


def tuned_methods(config) -> list[str]:
    tune = config.tune
    return list(tune.methods) if tune and tune.methods else list(config.methods)


def _check_alpha(config, method: str) -> None:
    from citi.config import config_from_dict
    from citi.train.config import TrainConfig

    values = config.train_values(method, "selection.json", config.tune.seed, swept_alpha=1.0)
    cfg = config_from_dict(TrainConfig, values, "")
    adapter = cfg.method_spec.adapter
    if adapter == "lora":
        rank, alpha = cfg.lora_settings()
        where = "lora"
    elif adapter == "molora":
        m = cfg.molora_config()
        rank, alpha, where = m.rank, m.alpha, "molora"
    else:
        return
    if not math.isclose(alpha, 2 * rank):
        raise ConfigError(
            f"tune: the protocol keeps alpha = 2 x rank; {method} has {where} rank {rank}, "
            f"alpha {alpha:g} (set {where}: {{rank: {rank}, alpha: {2 * rank}}})"
        )


def scaled_lr(config, method: str, scale: float) -> dict[str, float]:
    """Every stage learning rate of ``method``'s runs multiplied by ``scale``."""
    from citi.config import config_from_dict
    from citi.train.config import TrainConfig

    values = config.train_values(method, "selection.json", config.seeds[0], swept_alpha=1.0)
    stages = config_from_dict(TrainConfig, values, "").stages()
    return {s.name: s.lr * scale for s in stages}


def choose(candidates: list[dict]) -> dict | None:
    """The candidate with the lowest finite validation loss; ties to the smaller factor."""
    finite = [c for c in candidates if math.isfinite(c["validation_loss"])]
    if not finite:
        return None
    return min(sorted(finite, key=lambda c: c["scale"]), key=lambda c: c["validation_loss"])


def run_tuning(pipeline) -> dict:
    """Train every method's candidates (resuming finished ones) and write analysis/tune.json."""
    from citi.io import read_json, write_json_atomic

    config, out = pipeline.config, pipeline.out
    tune = config.tune
    result = {"criterion": CRITERION, "seed": tune.seed, "lr_scale": tune.lr_scale, "methods": {}}
    for method in tuned_methods(config):
        candidates = []
        for scale in tune.lr_scale:
            name = f"{method}-lr-x{scale:g}"
            lr = scaled_lr(config, method, scale)
            values = pipeline._train_values(method, tune.seed, tuned=False) | {
                **tune.train,
                "lr": lr,
                "snapshots": [],
                "eval_datasets": [],
            }
            run_dir = out / "tune" / name
            pipeline._run_trainer(name, values, f"tune ({name})", run_dir)
            log = read_json(run_dir / "summary.json")["eval"]
            candidates.append(
                {
                    "scale": scale,
                    "lr": lr,
                    "validation_loss_before": log[0]["loss"]["tool-validation"],
                    "validation_loss": log[-1]["loss"]["tool-validation"],
                    "steps": read_json(run_dir / "summary.json")["global_steps"],
                }
            )
        chosen = choose(candidates)
        if chosen is None:
            raise ConfigError(f"tune: every learning rate of {method} diverged; lower lr_scale")
        result["methods"][method] = {
            "candidates": candidates,
            "chosen": chosen["scale"],
            "lr": chosen["lr"],
        }
    write_json_atomic(out / "analysis" / "tune.json", result)
    return result


def chosen_lr(out, method: str) -> dict[str, float] | None:
    """The learning rates tuning chose for ``method``; None when it was not tuned."""
    from citi.io import read_json

    path = out / "analysis" / "tune.json"
    if not path.is_file():
        return None
    entry = read_json(path)["methods"].get(method)
    return None if entry is None else dict(entry["lr"])


def tune_section(config, out, runs, tasks, steps) -> list[str]:
    """The report's statement of the tuning: the protocol, every candidate and the choice."""
    from citi.io import read_json

    path = out / "analysis" / "tune.json"
    if not path.is_file():
        return []
    t = read_json(path)
    factors = ", ".join(f"{x:g}" for x in t["lr_scale"])
    parts = [
        "## Learning-rate tuning (one protocol for every method)",
        "",
        f"Every method trained once per learning-rate factor ({factors}; each multiplies all "
        f"its stage rates) on tuning seed {t['seed']}, excluded from the confirmatory seeds; "
        f"LoRA and MOLoRA with alpha = 2 x rank. Criterion: {t['criterion']}.",
        "",
        "| method | factor | learning rates | steps | validation loss before | after | chosen |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method, m in t["methods"].items():
        for c in m["candidates"]:
            lrs = ", ".join(f"{k} {v:.3g}" for k, v in c["lr"].items())
            mark = "**yes**" if c["scale"] == m["chosen"] else ""
            parts.append(
                f"| {method} | {c['scale']:g} | {lrs} | {c['steps']} | "
                f"{c['validation_loss_before']:.4f} | {c['validation_loss']:.4f} | {mark} |"
            )
    return [*parts, ""]
