"""``citi export RUN --out DIR``: a trained run as a folder the Hugging Face tools load alone.

    DIR/                    the base model with every trained base tensor written in (UCO
                            components for CITI, all weights for FT): AutoModelForCausalLM loads it
    DIR/adapter/            the PEFT adapter (MOLoRA for CITI, LoRA for the LoRA baselines):
                            PeftModel.from_pretrained(model, DIR/adapter) or model.load_adapter
    DIR/README.md           a model card: method, selection, data, training, evaluation results
    DIR/citi_config.yaml    the run's resolved training config; DIR/citi_adapter_config.json the
                            adapter_config.json citi itself reads

A MOLoRA adapter needs ``import citi`` before PEFT loads it (citi registers MOLoRA with PEFT).
The export reproduces ``citi.adapters.load_adapter``'s logits exactly in float32 (tested).
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from citi.adapters import ADAPTER_CONFIG, ADAPTER_WEIGHTS, read_adapter_config
from citi.components import adapter_kind
from citi.errors import CitiError
from citi.export_serving import prepare_for_serving, run_chat_template, serving_card
from citi.io import atomic_path, read_json, regular_file_inside

ADAPTER_SUBDIR = "adapter"


def run_root(adapter_dir: Path) -> Path:
    """The training run an adapter directory belongs to: RUN for RUN/final and
    RUN/snapshots/step-N, else the directory itself."""
    if adapter_dir.name == "final":
        return adapter_dir.parent
    if adapter_dir.parent.name == "snapshots":
        return adapter_dir.parent.parent
    return adapter_dir


def check_export_out(run: Path, root: Path, out: Path, overwrite: bool) -> None:
    """Refuse, before any work, an ``--out`` that would destroy a run or someone's files: the run
    directory itself, a directory inside it or one containing it (even with ``overwrite``), and
    a non-empty directory unless ``overwrite`` (which then replaces it atomically)."""
    target = out.resolve()
    for shown in (root, run):
        protected = shown.resolve()
        if target == protected:
            raise CitiError(f"--out: {out} is the run directory {shown}; choose one outside it")
        if protected in target.parents:
            raise CitiError(f"--out: {out} is inside the run directory {shown}; choose one outside")
        if target in protected.parents:
            raise CitiError(f"--out: {out} contains the run directory {shown}; choose another")
    if out.is_dir() and not overwrite and any(out.iterdir()):
        raise CitiError(
            f"--out: {out} exists and is not empty; add --overwrite to replace it (atomically) "
            f"or choose another directory"
        )


def find_adapter_dir(run: str | Path) -> Path:
    """The adapter a run path names: RUN/final for a training run, or RUN itself (a snapshot or
    final directory)."""
    run = Path(run)
    for candidate in (run / "final", run):
        if (candidate / ADAPTER_CONFIG).is_file():
            return candidate
    raise CitiError(
        f"RUN: {run} holds no trained adapter ({ADAPTER_CONFIG} in it or in its final/ folder)"
    )


def _peft_config(meta: dict, model, base_model_id: str):
    fields: dict[str, Any] = {"task_type": "CAUSAL_LM", "base_model_name_or_path": base_model_id}
    if meta.get("molora"):
        from citi.molora.peft import peft_config_for, require_peft

        require_peft()
        return peft_config_for(meta, model, **fields)
    if meta.get("lora"):
        from peft import LoraConfig

        lora = meta["lora"]
        return LoraConfig(
            r=lora["rank"],
            lora_alpha=lora["alpha"],
            lora_dropout=0.0,
            target_modules=lora["targets"],
            bias="none",
            **fields,
        )
    return None


def _split_state(state: dict[str, torch.Tensor]):
    adapter = {k: v for k, v in state.items() if adapter_kind(k)}
    base = {k: v for k, v in state.items() if not adapter_kind(k)}
    return adapter, base


def _write_base_tensors(model, base: dict[str, torch.Tensor], source: Path) -> None:
    own = model.state_dict()
    for key, value in base.items():
        if key not in own:
            raise CitiError(f"{source}: base tensor {key} is not in the base model")
        if own[key].shape != value.shape:
            raise CitiError(
                f"{source}: {key} has shape {tuple(value.shape)}, the base model "
                f"{tuple(own[key].shape)}"
            )
    model.load_state_dict(base, strict=False)


def _checkpoint_key(key: str) -> str:
    """A citi state-dict key as a PEFT checkpoint key: PEFT's ``base_model.model.`` prefix, and no
    adapter name (citi's LoRA, injected by PEFT, carries ``.default`` after ``lora_A`` etc.)."""
    parts = key.split(".")
    kept = [
        p
        for i, p in enumerate(parts)
        if not (p == "default" and i > 0 and adapter_kind(parts[i - 1]) is not None)
    ]
    return "base_model.model." + ".".join(kept)


def _save_peft_adapter(model, config, adapter: dict[str, torch.Tensor], out: Path) -> None:
    """Wrap ``model`` in PEFT, load citi's adapter tensors through PEFT's own loader and let PEFT
    write its files; ``model`` is unwrapped again afterwards."""
    from peft import get_peft_model, set_peft_model_state_dict

    base_model_id = config.base_model_name_or_path
    with warnings.catch_warnings():  # PEFT warns that it replaces the id with the model's own
        warnings.filterwarnings("ignore", message=".*base_model_name_or_path.*was renamed")
        peft_model = get_peft_model(model, config)
    peft_model.peft_config["default"].base_model_name_or_path = base_model_id
    # torch's _IncompatibleKeys (missing_keys, unexpected_keys): a named tuple built at runtime,
    # whose fields mypy cannot see.
    result: Any = set_peft_model_state_dict(
        peft_model, {_checkpoint_key(k): v for k, v in adapter.items()}
    )
    if result.unexpected_keys:
        raise CitiError(f"adapter tensor {result.unexpected_keys[0]} has no place in PEFT")
    missing = [k for k in result.missing_keys if adapter_kind(k)]
    if missing:
        raise CitiError(f"PEFT expects adapter tensor {missing[0]}, which the run lacks")
    peft_model.save_pretrained(str(out), save_embedding_layers=False)
    peft_model.unload()


def export_run(
    run: str | Path,
    out: str | Path,
    results: Sequence[str | Path] = (),
    base_model_id: str | None = None,
    dtype: str = "float32",
    overwrite: bool = False,
) -> Path:
    """Write the export folder for ``run`` (see the module docstring) atomically; an existing
    non-empty ``out`` only with ``overwrite`` (see :func:`check_export_out`)."""
    from citi.adapters import read_weights
    from citi.models import load_model

    adapter_dir = find_adapter_dir(run)
    root, out = run_root(adapter_dir), Path(out)
    check_export_out(Path(run), root, out, overwrite)
    # Every file read from the run is a regular file inside it (a link out is refused).
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        regular_file_inside(adapter_dir / name, root)
    config_yaml = regular_file_inside(root / "config.yaml", root)
    summary_path = None
    if adapter_dir.parent.name != "snapshots":  # a snapshot is not what the summary describes
        summary_path = regular_file_inside(root / "summary.json", root)
    meta = read_adapter_config(adapter_dir)
    state = read_weights(adapter_dir / ADAPTER_WEIGHTS)
    evals = [_read_results(Path(p)) for p in results]
    loaded = load_model(meta["base_model"], dtype="float32", device="cpu")
    model = loaded.model
    adapter, base = _split_state(state)
    _write_base_tensors(model, base, adapter_dir / ADAPTER_WEIGHTS)
    base_model_id = base_model_id or str(out.resolve())
    config = _peft_config(meta, model, base_model_id)
    if adapter and config is None:
        raise CitiError(f"{adapter_dir / ADAPTER_CONFIG}: adapter tensors but no adapter settings")
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    _prepare_for_serving(loaded, config_yaml)
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        if config is not None:
            _save_peft_adapter(model, config, adapter, tmp / ADAPTER_SUBDIR)
        # transformers wraps ``to`` in a decorator whose type hides the bound method.
        model.to(torch_dtype).save_pretrained(str(tmp))  # type: ignore[arg-type]
        loaded.tokenizer.save_pretrained(str(tmp))
        shutil.copyfile(adapter_dir / ADAPTER_CONFIG, tmp / "citi_adapter_config.json")
        if config_yaml is not None:
            shutil.copyfile(config_yaml, tmp / "citi_config.yaml")
        summary = read_summary(summary_path) if summary_path is not None else {}
        card = model_card(meta, summary, evals, base_model_id, config is not None)
        card += "\n".join(serving_card(base_model_id, bool(meta.get("molora"))))
        (tmp / "README.md").write_text(card, encoding="utf-8")
    return out


def read_summary(path: Path) -> dict:
    """A run's summary.json, checked for the fields the model card prints: one error line
    naming the file and the field when one has the wrong type."""
    summary = read_json(path)
    problem = _summary_problem(summary)
    if problem:
        raise CitiError(f"{path}: {problem}")
    return summary


def _summary_problem(summary) -> str | None:
    def number(v) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    def number_map(v) -> bool:
        return isinstance(v, dict) and all(number(x) for x in v.values())

    if not isinstance(summary, dict):
        return f"expected an object, got {type(summary).__name__}"
    if not isinstance(summary.get("precision", ""), str | None):
        return "'precision' must be a string"
    steps = summary.get("global_steps", 0)
    if steps is not None and (not number(steps)):
        return f"'global_steps' must be a number, got {steps!r}"
    if not number_map(summary.get("stage_seconds") or {}):
        return "'stage_seconds' must map stages to seconds"
    if not isinstance(summary.get("data") or {}, dict):
        return "'data' must be an object"
    records = summary.get("eval") or []
    if not isinstance(records, list):
        return "'eval' must be a list of held-out loss records"
    for i, record in enumerate(records):
        if not isinstance(record, dict) or not number_map(record.get("loss")):
            return f"'eval'[{i}] must be an object whose 'loss' maps datasets to numbers"
    return None


def _prepare_for_serving(loaded, config_yaml: Path | None) -> None:
    """The run's chat template, call parser and end-of-turn token onto the tokenizer and the
    generation config before they are saved (see citi.export_serving)."""
    from citi.data.chat_template import chat_template_for

    template = chat_template_for(loaded.tokenizer, run_chat_template(config_yaml))
    prepare_for_serving(loaded.tokenizer, loaded.model, template)


def _read_results(path: Path) -> dict:
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict):
        raise CitiError(f"--results: {path} is not a citi eval results.json")
    return data


METHOD_TEXT = {
    "citi": "CITI (Hao et al., AAAI 2025): Mixture-of-LoRA experts on the most tool-important "
    "components, full fine-tuning of the least generally-important ones, three stages",
    "ft": "full fine-tuning",
    "lora": "LoRA",
}


def model_card(meta: dict, summary: dict, evals: list[dict], base_id: str, has_adapter: bool):
    """A Hugging Face model card (YAML front matter + markdown) from what the run recorded."""
    method = meta.get("method", "?")
    lines = [
        "---",
        "library_name: " + ("peft" if has_adapter else "transformers"),
        "tags: [citi, tool-use" + (", molora" if meta.get("molora") else "") + "]",
        "---",
        "",
        f"# {method} on {meta.get('base_model')}",
        "",
        f"Trained with citi: {METHOD_TEXT.get(method, method)}.",
        "",
        "## Selection",
        "",
    ]
    molora, uco = meta.get("molora_components") or [], meta.get("uco_components") or []
    if meta.get("molora"):
        settings = ", ".join(f"{k} {v}" for k, v in meta["molora"].items())
        lines.append(f"- MOLoRA ({settings}) on {len(molora)} components: {', '.join(molora)}")
    if meta.get("lora"):
        lora = meta["lora"]
        lines.append(
            f"- LoRA rank {lora['rank']}, alpha {lora['alpha']} on {len(lora['targets'])} modules"
        )
    if uco:
        lines.append(f"- fully trained components (written into the weights): {', '.join(uco)}")
    if method == "ft":
        lines.append("- every weight trained (written into the weights)")
    if summary:
        lines += ["", "## Training", ""]
        lines.append(f"- precision {summary.get('precision')}, {summary.get('global_steps')} steps")
        for stage, seconds in (summary.get("stage_seconds") or {}).items():
            lines.append(f"- stage {stage}: {seconds} s")
        data = summary.get("data")
        if data:
            lines.append(f"- data: `{json.dumps(data, sort_keys=True)}`")
        for record in summary.get("eval") or []:
            losses = ", ".join(f"{k} {v:.4f}" for k, v in record["loss"].items())
            lines.append(f"- held-out loss after {record['after']}: {losses}")
    if evals:
        lines += ["", "## Evaluation (citi eval)", "", "| task | metric | value | examples |"]
        lines.append("| --- | --- | --- | --- |")
        for result in evals:
            for task, entry in result["tasks"].items():
                metric = entry.get("primary")
                value = (entry.get("metrics") or {}).get(metric)
                lines.append(f"| {task} | {metric} | {value} | {entry.get('limit') or 'all'} |")
    lines += ["", "## Load", "", "```python", "from transformers import AutoModelForCausalLM"]
    lines.append(f'model = AutoModelForCausalLM.from_pretrained("{base_id}")')
    if has_adapter:
        if meta.get("molora"):
            lines.append("import citi  # registers MOLoRA with PEFT")
        lines += [
            "from peft import PeftModel",
            f'model = PeftModel.from_pretrained(model, "{base_id}", subfolder="{ADAPTER_SUBDIR}")',
        ]
    lines += ["```", ""]
    return "\n".join(lines)


def push_to_hub(folder: Path, repo_id: str) -> str:
    """Upload the export folder to a hub model repository (needs a network and a token)."""
    try:
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(repo_id, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id)
    except Exception as err:  # network, auth and hub errors alike become one line
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CitiError(f"--push-to-hub: could not upload to {repo_id}: {reason}") from None
    return str(getattr(info, "commit_url", repo_id))
