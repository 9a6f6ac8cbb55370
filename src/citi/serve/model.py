"""The model ``citi serve`` hosts: a training run, an export folder, or a base model spec.

- a training run (``RUN`` or ``RUN/final``, citi's ``adapter_config.json``): its base model with
  the adapter applied as ``citi eval`` does, rendered with the run's ``--chat-template`` or
  the template training chose (citi's Hermes prelude where the model lacks tools);
- an export folder (``citi export``): the base with its trained tensors, and ``adapter/`` through
  PEFT (MOLoRA registers with PEFT on ``import citi.molora.peft``); its tokenizer carries the
  run's chat template;
- anything else ``citi.models.load_model`` takes (an alias such as ``smollm2-135m-instruct``, a
  directory, a hub id): the base model alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from citi.adapters import ADAPTER_CONFIG, ADAPTER_WEIGHTS
from citi.errors import CitiError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase


@dataclass
class ServedModel:
    """What the server needs to answer: the model, its tokenizer and how to talk to it."""

    model: object
    tokenizer: PreTrainedTokenizerBase
    name: str  # the id clients put in "model"
    template: str  # the Jinja chat template prompts are rendered with
    context_length: int  # prompt + answer tokens the model can attend to
    stop_ids: list[int] = field(default_factory=list)  # EOS and end-of-turn token ids
    hermes_calls: bool = False  # the template writes calls as <tool_call> blocks

    @property
    def device(self):
        return next(self.model.parameters()).device


def _context_length(model) -> int:
    config = getattr(model, "config", None)
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return 2048


def _stop_ids(model, tokenizer, template: str) -> list[int]:
    from citi.export_serving import end_of_turn_token

    ids: list[int] = []
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (eos, tokenizer.eos_token_id):
        ids += [value] if isinstance(value, int) else list(value or [])
    end = end_of_turn_token(tokenizer, template)
    if end is not None:
        ids.append(tokenizer.convert_tokens_to_ids(end))
    return sorted(set(ids))


def _is_export(path: Path) -> bool:
    return (path / "citi_adapter_config.json").is_file() and (path / "config.json").is_file()


def load_served(
    source: str, dtype: str = "auto", device: str | None = None, name: str | None = None
) -> ServedModel:
    """Load ``source`` (see the module docstring) in evaluation mode."""
    from citi.data.chat_template import chat_template_for
    from citi.export_serving import run_chat_template, writes_hermes_calls
    from citi.models import load_model

    path = Path(source).expanduser()
    override = None
    model: torch.nn.Module  # a Hugging Face model, or a PeftModel around one
    if _is_export(path):
        loaded = load_model(str(path), dtype=dtype, device=device)
        model = loaded.model
        if (path / "adapter" / "adapter_config.json").is_file():
            from peft import PeftModel

            import citi.molora.peft  # noqa: F401  (registers MOLoRA with PEFT)

            try:
                model = PeftModel.from_pretrained(model, str(path / "adapter"))
            except Exception as err:  # PEFT's errors (missing tensors, unknown type) as one line
                raise CitiError(f"{path / 'adapter'}: PEFT cannot load it ({err})") from None
    elif path.is_dir() and any(
        (d / ADAPTER_CONFIG).is_file() and (d / ADAPTER_WEIGHTS).is_file()
        for d in (path, path / "final")
    ):
        from citi.adapters import load_for_eval, read_adapter_config
        from citi.export import find_adapter_dir, run_root

        adapter_dir = find_adapter_dir(path)
        meta = read_adapter_config(adapter_dir)
        precision = "bf16" if dtype == "bfloat16" else "fp32"
        loaded = load_for_eval(meta["base_model"], str(adapter_dir), dtype, device, precision)
        model = loaded.model
        override = run_chat_template(run_root(adapter_dir) / "config.yaml")
    else:
        loaded = load_model(source, dtype=dtype, device=device)
        model = loaded.model
    model.eval()
    tokenizer = loaded.tokenizer
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    template = chat_template_for(tokenizer, override)
    return ServedModel(
        model=model,
        tokenizer=tokenizer,
        name=name or (path.name if path.exists() else source),
        template=template,
        context_length=_context_length(loaded.model),
        stop_ids=_stop_ids(loaded.model, tokenizer, template),
        hermes_calls=writes_hermes_calls(tokenizer, template),
    )
