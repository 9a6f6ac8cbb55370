"""Router analysis (paper Fig. 6, 7): how MOLoRA routers split tool and non-tool inputs.

For chosen MOLoRA components, the mean gate distribution over the non-padding tokens of tool
examples and of general examples. With the null expert, a router that learned the paper's
routing sends tool tokens to the experts (indices 1..N) and general tokens to index 0.
"""

from __future__ import annotations

from pathlib import Path

import torch

from citi.data import PaddingCollator, encode_all
from citi.data.example import Example
from citi.io import write_figure_atomic, write_json_atomic
from citi.molora import molora_layers


@torch.no_grad()
def gate_distributions(
    model,
    tokenizer,
    groups: dict[str, list[Example]],
    max_length: int = 512,
    batch_size: int = 4,
    layers: list[str] | None = None,
) -> dict:
    """{layer: {group: mean gate vector}} over the non-padding tokens of each group."""
    found = molora_layers(model)
    if not found:
        raise ValueError("the model has no MOLoRA layers")
    names = layers or list(found)
    sums: dict[str, dict] = {n: {} for n in names}
    captured: dict[str, torch.Tensor] = {}
    hooks = [
        found[n].register_forward_hook(
            lambda mod, inp, out, n=n: captured.__setitem__(n, mod.gates(inp[0]))
        )
        for n in names
    ]
    collate = PaddingCollator(tokenizer.pad_token_id)
    device = next(model.parameters()).device
    model.eval()
    try:
        for group, examples in groups.items():
            encoded = encode_all(tokenizer, examples, max_length)
            for i in range(0, len(encoded), batch_size):
                batch = {k: v.to(device) for k, v in collate(encoded[i : i + batch_size]).items()}
                model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                mask = batch["attention_mask"].unsqueeze(-1).float()  # [batch, seq, 1]
                for n in names:
                    g = captured[n].float() * mask  # [batch, seq, E]
                    total, count = sums[n].get(group, (0.0, 0.0))
                    sums[n][group] = (total + g.sum((0, 1)), count + mask.sum())
    finally:
        for h in hooks:
            h.remove()
    return {n: {g: (t / c).tolist() for g, (t, c) in per.items()} for n, per in sums.items()}


def plot_router(dist: dict, path: str | Path, null_expert: bool = True) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dist)
    fig, axes = plt.subplots(
        1, len(names), figsize=(3.6 * len(names), 3.2), squeeze=False, constrained_layout=True
    )
    for ax, name in zip(axes[0], names, strict=True):
        groups = list(dist[name])
        width = 0.8 / len(groups)
        n_out = len(next(iter(dist[name].values())))
        labels = (["null"] if null_expert else []) + [
            f"E{i + 1}" for i in range(n_out - (1 if null_expert else 0))
        ]
        for j, g in enumerate(groups):
            ax.bar([i + j * width for i in range(n_out)], dist[name][g], width, label=g)
        ax.set_xticks([i + width * (len(groups) - 1) / 2 for i in range(n_out)], labels)
        ax.set_ylim(0, 1)
        ax.set_title(name.replace("model.layers.", "L"), fontsize=9)
    axes[0][0].set_ylabel("mean gate")
    axes[0][0].legend(fontsize=8)
    write_figure_atomic(path, fig, dpi=110)
    plt.close(fig)


def run_router_analysis(
    model,
    tokenizer,
    groups: dict[str, list[Example]],
    out_dir,
    max_layers: int = 4,
    null_expert: bool = True,
) -> dict:
    """Gate distributions of up to ``max_layers`` MOLoRA components spread over the depth."""
    names = list(molora_layers(model))
    if len(names) > max_layers:
        step = (len(names) - 1) / (max_layers - 1)
        names = [names[round(i * step)] for i in range(max_layers)]
    dist = gate_distributions(model, tokenizer, groups, layers=names)
    out = Path(out_dir)
    write_json_atomic(out / "router.json", dist)
    plot_router(dist, out / "router.png", null_expert)
    return dist
