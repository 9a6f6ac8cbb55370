"""Component replacement (paper Table 1): copy the weights of the top / bottom x% components by
tool importance from a fine-tuned model into the base model, then evaluate general abilities.

Settings are written ``T-20`` (top 20% by M_h) and ``D-50`` (bottom 50%). The tuned model must be
one whose trained tensors are the components' own weights (``citi train --method ft``); a LoRA
model would first have to be merged.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from citi.components import adapter_kind, list_components
from citi.errors import CitiError
from citi.evaluation.config import EvalConfig
from citi.io import write_figure_atomic, write_json_atomic
from citi.precision import run_in_float32


def parse_setting(setting: str) -> tuple[str, float]:
    m = re.fullmatch(r"([TD])-(\d+(?:\.\d+)?)", setting.strip())
    if not m or not 0 < float(m.group(2)) < 100:
        raise CitiError(f"--settings: expected T-<percent> or D-<percent>, got {setting!r}")
    return m.group(1), float(m.group(2)) / 100


def components_for(setting: str, rank_m: dict[str, int]) -> list[str]:
    """The components a setting replaces, from importance.json's tool ranking (1 = top)."""
    side, share = parse_setting(setting)
    order = sorted(rank_m, key=rank_m.__getitem__)
    k = max(1, round(share * len(order)))
    return order[:k] if side == "T" else order[-k:]


def check_ranking(rank_m, components: list[str], model: str) -> None:
    """importance.json's tool ranking must rank components of this model, each by a whole
    number: one from another model (other layer count or component names) is one error line."""
    if not isinstance(rank_m, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in rank_m.values()
    ):
        raise CitiError("--importance: rank_M must map component names to ranks (1 = top)")
    unknown = sorted(set(rank_m) - set(components))
    if unknown:
        raise CitiError(
            f"--importance: it ranks {len(unknown)} component(s) {model} lacks, e.g. "
            f"{unknown[0]!r}: an importance.json of another model?"
        )


@torch.no_grad()
def replace_components(base, tuned, names: list[str]) -> None:
    """Copy weight (and bias) of ``names`` from ``tuned`` into ``base`` in place."""
    base_paths = {c.name: c.path for c in list_components(base)}
    tuned_paths = {c.name: c.path for c in list_components(tuned)}
    for name in names:
        src = tuned.get_submodule(tuned_paths[name])
        dst = base.get_submodule(base_paths[name])
        if any(adapter_kind(n) for n, _ in src.named_parameters()):
            raise CitiError(
                "replace: the tuned model has adapters on its components; use a fully "
                "fine-tuned run (citi train --method ft)"
            )
        if src.weight.dtype == dst.weight.dtype:
            dst.weight.copy_(src.weight)
            if dst.bias is not None:
                dst.bias.copy_(src.bias)
            continue
        # A bf16 base receiving float32 tuned weights: they keep float32, as in the tuned model
        # (citi.adapters.keep_trained_in_float32); copying would round most updates away.
        fallback = dst.weight.dtype
        dst.weight.data = src.weight.detach().clone()
        if dst.bias is not None:
            dst.bias.data = src.bias.detach().clone()
        run_in_float32(dst, fallback)


def check_tuned_run(tuned_run: str) -> dict:
    """The tuned run's adapter_config.json, when the run trained base weights (FT's, or CITI's
    UCO components); a run that trained adapters only (LoRA) is one error line, since copying
    its untouched base weights would give exactly the vanilla model."""
    from citi.adapters import read_adapter_config

    adapter_dir = Path(tuned_run) / "final"
    meta = read_adapter_config(adapter_dir if adapter_dir.is_dir() else tuned_run)
    trained = meta.get("trained_base_tensors")
    if not isinstance(trained, int) or isinstance(trained, bool):  # an older adapter_config
        trained = int(meta.get("method") == "ft" or bool(meta.get("uco_components")))
    if trained <= 0:
        raise CitiError(
            f"--tuned: {tuned_run} is a {meta.get('method', '?')} run that trained adapters only; "
            f"replacement copies trained component weights, so it needs a run that trained "
            f"base weights (citi train --method ft, or CITI's UCO components)"
        )
    return meta


def run_replace(config: EvalConfig, importance: dict, settings: list[str], out_dir) -> dict:
    """Evaluate ``config.tasks`` on the base model (``config.model``), each setting and the
    tuned model (``config.adapter``: a fully fine-tuned run). ``config.precision`` as in ``citi
    eval``: bf16 loads every variant's frozen weights in bfloat16; a replaced component holds
    exactly the tuned model's weights, float32 as trained (a fully fine-tuned model itself is
    evaluated in float32, see citi.adapters.keep_trained_in_float32)."""
    from citi.adapters import load_for_eval
    from citi.evaluation.runner import evaluate
    from citi.models import load_model
    from citi.models.loader import default_device
    from citi.precision import resolve_precision, weights_dtype

    for s in settings:
        parse_setting(s)
    if not config.adapter:
        raise CitiError("replace: needs the fully fine-tuned run (--tuned)")
    check_tuned_run(config.adapter)
    device = config.device
    precision = resolve_precision(config.precision, device or default_device())
    out = Path(out_dir)
    tuned = load_for_eval(config.model, config.adapter, device=device, precision=precision)
    names = [c.name for c in list_components(tuned.model)]
    check_ranking(importance.get("rank_M"), names, config.model)
    results = {}
    variants = ["vanilla", *settings, "tuned"]
    for variant in variants:
        if variant == "tuned":
            loaded = tuned
        else:
            loaded = load_model(config.model, dtype=weights_dtype("auto", precision), device=device)
            if variant != "vanilla":
                names = components_for(variant, importance["rank_M"])
                replace_components(loaded.model, tuned.model, names)
            loaded.model.eval()
        res = evaluate(config, out / variant, loaded=loaded, variant=variant)
        results[variant] = {t: r["metrics"][r["primary"]] for t, r in res["tasks"].items()}
    summary = {
        "model": config.model,
        "tuned": config.adapter,
        "settings": settings,
        "tasks": config.tasks,
        "limit": config.limit,
        "precision": precision,
        "results": results,
    }
    write_json_atomic(out / "replace.json", summary)
    plot_replace(summary, out / "replace.png")
    return summary


def plot_replace(summary: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(summary["results"])
    tasks = summary["tasks"]
    fig, axes = plt.subplots(
        1, len(tasks), figsize=(3.4 * len(tasks), 3.2), squeeze=False, constrained_layout=True
    )
    for ax, task in zip(axes[0], tasks, strict=True):
        ax.bar(range(len(variants)), [summary["results"][v].get(task, 0) for v in variants])
        ax.set_xticks(range(len(variants)), variants, rotation=45, ha="right")
        ax.set_title(task, fontsize=9)
    write_figure_atomic(path, fig, dpi=110)
    plt.close(fig)
