"""What a server needs beside the weights: the run's chat template, how to read calls back, and
when a turn ends.

``citi export`` calls :func:`prepare_for_serving` before it saves the tokenizer and the model, so
the export folder carries:

- ``tokenizer_config.json``'s ``chat_template``: the exact template the run trained with (citi's
  Hermes tool prelude in front of the model's own template when that one lacks tools, or the
  run's ``--chat-template``), so any server renders tools and calls as training did;
- ``tokenizer_config.json``'s ``response_template``: transformers' declarative parser for
  ``tokenizer.parse_response`` (and ``transformers serve``), set when the template writes calls
  the Hermes way (``<tool_call>{json}</tool_call>``);
- ``generation_config.json``'s ``eos_token_id``: the template's end-of-turn token among the EOS
  ids, so a plain ``generate`` stops at the end of the assistant turn.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_SENTINEL = "citi_turn_end_probe"


def run_chat_template(config_yaml: str | Path | None) -> str | None:
    """The ``--chat-template`` a run was trained with, from its ``config.yaml`` (None when the
    run has no such file or used the model's own template)."""
    import yaml

    if config_yaml is None or not Path(config_yaml).is_file():
        return None
    config = yaml.safe_load(Path(config_yaml).read_text(encoding="utf-8")) or {}
    return config.get("chat_template") if isinstance(config, dict) else None


def end_of_turn_token(tokenizer, template: str) -> str | None:
    """The special token ``template`` closes an assistant turn with (``<|im_end|>``,
    ``<|eot_id|>``...): the first special token rendered after an assistant message's text."""
    from citi.data.chat_template import render_chat

    messages = [{"role": "user", "content": "u"}, {"role": "assistant", "content": _SENTINEL}]
    try:
        text = render_chat(tokenizer, template, messages)
    except Exception:  # a template that cannot render a plain exchange has no turn end to find
        return None
    tail = text.split(_SENTINEL, 1)[-1]
    special = set(tokenizer.all_special_ids)
    for token_id in tokenizer(tail, add_special_tokens=False)["input_ids"]:
        if token_id in special:
            return tokenizer.convert_ids_to_tokens(token_id)
    return None


def writes_hermes_calls(tokenizer, template: str) -> bool:
    """Whether ``template`` renders an assistant's call as a Hermes ``<tool_call>`` block."""
    from citi.data.chat_template import render_chat

    call = {"type": "function", "function": {"name": _SENTINEL, "arguments": {}}}
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "u"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
    ]
    try:
        text = render_chat(tokenizer, template, messages)
    except Exception:
        return False
    return f'<tool_call>\n{{"name": "{_SENTINEL}"' in text


def generation_opener(tokenizer, template: str) -> str | None:
    """What ``add_generation_prompt`` appends (``<|im_start|>assistant\n``): where an answer
    starts, the anchor transformers' response parser needs."""
    from citi.data.chat_template import render_chat

    messages = [{"role": "user", "content": "u"}]
    try:
        bare = render_chat(tokenizer, template, messages)
        opened = render_chat(tokenizer, template, messages, add_generation_prompt=True)
    except Exception:
        return None
    return opened[len(bare) :] if opened.startswith(bare) and len(opened) > len(bare) else None


def hermes_response_template(opener: str, end_of_turn: str | None) -> dict[str, Any]:
    """transformers' response template (``tokenizer.parse_response``) for Hermes calls: after
    ``opener``, text, then ``<tool_call>`` blocks of JSON, up to the end-of-turn token."""
    ends = [re.escape(t) for t in (end_of_turn,) if t]
    content: dict[str, Any] = {"content": "text"}
    if ends:
        content["close_pattern"] = r"\s*(?:" + "|".join(ends) + ")"
    return {
        "defaults": {"role": "assistant"},
        "start_anchor": opener,
        "fields": {
            "tool_calls": {
                # \s* eats the newline between text and a call, and between two calls
                "open_pattern": r"\s*<tool_call>",
                "close": "</tool_call>",
                "repeats": True,
                "content": "json",
                "transform": {"type": "function", "function": "{content}"},
            },
            "content": content,
        },
    }


def prepare_for_serving(tokenizer, model, template: str) -> str | None:
    """Put ``template``, its call parser and its end-of-turn token on ``tokenizer`` and
    ``model.generation_config`` (written by their ``save_pretrained``). Returns the end-of-turn
    token, if the template has one."""
    tokenizer.chat_template = template
    end = end_of_turn_token(tokenizer, template)
    opener = generation_opener(tokenizer, template)
    if opener and writes_hermes_calls(tokenizer, template):
        tokenizer.response_template = hermes_response_template(opener, end)
    if end is not None:
        end_id = tokenizer.convert_tokens_to_ids(end)
        eos = model.generation_config.eos_token_id
        eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        if end_id not in eos:
            model.generation_config.eos_token_id = [*eos, end_id] if eos else end_id
    return end


def serving_card(folder_id: str, molora: bool) -> list[str]:
    """The model card's serving section: ``citi serve`` and the openai client."""
    lines = [
        "",
        "## Serve (OpenAI-compatible, with tool calls)",
        "",
        "```bash",
        f"citi serve {folder_id} --port 8000",
        "```",
        "",
        "```python",
        "from openai import OpenAI",
        'client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="none")',
        "reply = client.chat.completions.create(",
        f'    model="{Path(folder_id).name}", messages=[{{"role": "user", "content": "Hi"}}],',
        "    tools=[...])  # calls come back in reply.choices[0].message.tool_calls",
        "```",
        "",
        "The chat template in tokenizer_config.json is the one the run trained with (tools in "
        "the Hermes format); calls are `<tool_call>{json}</tool_call>` blocks.",
    ]
    if molora:
        lines.append(
            "MOLoRA routes each token through its experts, so it cannot be merged into the "
            "weights: vLLM and llama.cpp cannot serve this adapter; `citi serve` can."
        )
    return [*lines, ""]
