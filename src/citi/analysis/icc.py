"""Incremental Change of Capability (paper Sec. 2.1, Eq. 1-2, Fig. 2, 8, 9).

For each ability, "final inputs" are an instruction followed by a randomly truncated prefix of its
gold answer (seeded). The hidden state of the last token is read at the input of every layer's
attention block and FFN. ICC_t^l = mean over the inputs of H_tuned − H_base, and the analysis
reports the cosine similarity between ICC_tool and each general ability's ICC_t per layer. With
a second tuned model (e.g. fine-tuned on code), the same similarities between the first model's
ICC_tool and the second model's ICC_t* are the paper's dashed lines.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from citi.components import find_decoder_layers
from citi.data.example import Example
from citi.data.render import encode
from citi.errors import CitiError
from citi.io import write_figure_atomic, write_json_atomic

MODULES = ("attn", "ffn")


def final_inputs(tokenizer, examples: list[Example], max_length: int, seed: int) -> list[list[int]]:
    """Prompt tokens + a random-length prefix (0..all tokens) of the answer, per example."""
    rng = random.Random(seed)
    out = []
    for ex in examples:
        enc = encode(tokenizer, ex, max_length)
        if enc is None:
            continue
        n_prompt = sum(t == -100 for t in enc.labels)
        n_answer = len(enc.input_ids) - n_prompt
        out.append(enc.input_ids[: n_prompt + rng.randint(0, n_answer)])
    return out


@torch.no_grad()
def mean_hidden(
    model, inputs: list[list[int]], pad_id: int, batch_size: int = 4, desc: str | None = None
) -> torch.Tensor:
    """Mean last-token hidden state at each layer's attention and FFN input: [layers, 2, hidden].

    Only the decoder runs: the hooks read everything before the final norm, so the LM head (a
    fifth of SmolLM2's matmuls, and a [batch, seq, vocab] logits tensor) would be wasted work."""
    _, layers = find_decoder_layers(model)
    get_decoder = getattr(model, "get_decoder", None)
    forward = get_decoder() if get_decoder is not None else model
    captured: dict[tuple[int, int], torch.Tensor] = {}

    def grab(i, j):
        def hook(module, args, kwargs):
            h = args[0] if args else kwargs["hidden_states"]
            captured[(i, j)] = h

        return hook

    if not inputs:
        raise CitiError("the ICC needs at least one input to average over")
    handles = []
    for i, layer in enumerate(layers):
        attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
        if not isinstance(attn, nn.Module) or not isinstance(mlp, nn.Module):
            raise CitiError(f"decoder layer {i}: no self_attn and mlp modules to read the ICC at")
        handles.append(attn.register_forward_pre_hook(grab(i, 0), with_kwargs=True))
        handles.append(mlp.register_forward_pre_hook(grab(i, 1), with_kwargs=True))
    device = next(model.parameters()).device
    total: torch.Tensor | None = None
    model.eval()
    try:
        starts = range(0, len(inputs), batch_size)
        for start in tqdm(starts, desc=desc, disable=desc is None, leave=False):
            chunk = inputs[start : start + batch_size]
            width = max(len(x) for x in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, x in enumerate(chunk):
                ids[r, : len(x)] = torch.tensor(x)
                mask[r, : len(x)] = 1
            forward(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False)
            last = torch.tensor([len(x) - 1 for x in chunk], device=device)  # [batch]
            rows = torch.arange(len(chunk), device=device)
            stacked = torch.stack(
                [
                    torch.stack([captured[(i, j)][rows, last].float() for j in range(2)])
                    for i in range(len(layers))
                ]
            )  # [layers, 2, batch, hidden]
            part = stacked.sum(2)
            total = part if total is None else total + part
    finally:
        for h in handles:
            h.remove()
    if total is None:  # unreachable: inputs is not empty, so a batch ran
        raise CitiError("the ICC averaged no batch")
    return (total / len(inputs)).cpu()


def icc_similarities(
    icc: dict[str, torch.Tensor],
    tool: str = "tool",
    reference: dict[str, torch.Tensor] | None = None,
) -> dict:
    """cos(ICC_tool, ICC_t) per layer and module for each general ability t.

    With ``reference`` (ICCs of a second tuned model), cos(ICC_tool, ICC*_t) instead."""
    out = {}
    others = reference or icc
    for ability in others:
        if ability == tool:
            continue
        sim = F.cosine_similarity(icc[tool], others[ability], dim=-1)  # [layers, 2]
        out[ability] = {m: sim[:, j].tolist() for j, m in enumerate(MODULES)}
    return out


def plot_icc(result: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), constrained_layout=True)
    colors = {}
    for ax, module in zip(axes, MODULES, strict=True):
        for ability, per in result["tuned"].items():
            line = ax.plot(per[module], label=ability)[0]
            colors[ability] = line.get_color()
        for ability, per in (result.get("reference") or {}).items():
            ax.plot(per[module], linestyle="--", color=colors.get(ability), label=f"{ability}*")
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_title(f"input of {'attention' if module == 'attn' else 'FFN'}")
        ax.set_xlabel("layer")
        ax.set_ylabel("cos(ICC_tool, ICC_t)")
    axes[0].legend(fontsize=7, ncol=2)
    write_figure_atomic(path, fig, dpi=110)
    plt.close(fig)


def run_icc(
    model: str,
    tuned: str,
    abilities: dict[str, str],
    out_dir,
    reference: str | None = None,
    data_dir=None,
    samples: int = 64,
    max_length: int = 512,
    seed: int = 0,
    batch_size: int = 4,
    precision: str = "fp32",
    device: str | None = None,
) -> dict:
    """``precision`` as in ``citi eval`` (bf16 loads the weights in bfloat16); the hidden states
    are averaged in float32 either way."""
    from citi.adapters import load_for_eval
    from citi.data import load_dataset
    from citi.models import load_model
    from citi.models.loader import default_device
    from citi.precision import model_precision, resolve_precision, weights_dtype

    precision = resolve_precision(precision, device or default_device())
    base = load_model(model, dtype=weights_dtype("auto", precision), device=device)
    inputs = {
        a: final_inputs(
            base.tokenizer, load_dataset(d, data_dir, limit=samples, seed=seed), max_length, seed
        )
        for a, d in abilities.items()
    }
    for a, x in inputs.items():
        if not x:
            raise CitiError(
                f"--max-length {max_length}: no {a} example ({abilities[a]}) fits in it; "
                "raise --max-length"
            )
    pad = base.tokenizer.pad_token_id
    ref_h = {
        precision: {
            a: mean_hidden(base.model, x, pad, batch_size, f"icc base {a}")
            for a, x in inputs.items()
        }
    }
    del base
    icc, ran_in = {}, {}
    for name, run in (("tuned", tuned), ("reference", reference)):
        if run is None:
            continue
        m = load_for_eval(model, run, device=device, precision=precision)
        # A fully fine-tuned run is evaluated in float32 (citi.adapters.keep_trained_in_float32):
        # its shift is then taken against the base in float32 too, not against bf16 rounding.
        ran = ran_in[name] = model_precision(m.model)
        if ran not in ref_h:
            b = load_model(model, dtype=weights_dtype("auto", ran), device=device)
            ref_h[ran] = {
                a: mean_hidden(b.model, x, pad, batch_size, f"icc base {a}")
                for a, x in inputs.items()
            }
            del b
        icc[name] = {
            a: mean_hidden(m.model, x, pad, batch_size, f"icc {name} {a}") - ref_h[ran][a]
            for a, x in inputs.items()
        }
        del m
    result = {
        "model": model,
        "tuned": icc_similarities(icc["tuned"]),
        "reference": icc_similarities(icc["tuned"], reference=icc.get("reference"))
        if reference
        else None,
        "settings": {
            "tuned_run": tuned,
            "reference_run": reference,
            "abilities": abilities,
            "samples": samples,
            "max_length": max_length,
            "seed": seed,
            "precision": precision,
            "ran_in": ran_in,  # fp32 for a fully fine-tuned run, whatever the precision
        },
    }
    out = Path(out_dir)
    write_json_atomic(out / "icc.json", result)
    plot_icc(result, out / "icc.png")
    return result
