"""The chat template citi renders conversations with, tools and tool calls included.

A model whose own template renders tools (probed like TRL's ``supports_tool_calling``: a
sentinel tool, call and result must all appear in a render) is used as it is, with ``tools=``.
Otherwise citi puts :data:`TOOL_PRELUDE` in front of the model's template: a few Jinja
statements that rewrite a conversation with tools the Hermes way (as Qwen2.5's template writes
it, and as vLLM's ``hermes`` parser, llama.cpp and transformers read it) before the model's own
template runs:

- the tools are listed as JSON inside ``<tools></tools>`` in the system turn (added to the
  conversation's system message, or as the system message when there is none);
- an assistant turn's calls become its text: ``<tool_call>\\n{"name": ..., "arguments": {...}}
  \\n</tool_call>`` per call, after any text, one per line;
- tool results become a user turn of ``<tool_response>\\n...\\n</tool_response>`` blocks (results
  of consecutive tool turns share one user turn).

A conversation without tools, calls or tool results is not touched: its render is byte-identical
to the model's template alone. ``--chat-template FILE`` replaces all of this with the file.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from citi.errors import ConfigError, DataError

# The prelude lives in tool_prelude.jinja beside this module (readable, copyable into a model's
# tokenizer_config.json for serving).
TOOL_PRELUDE = (Path(__file__).parent / "tool_prelude.jinja").read_text(encoding="utf-8")
# The prelude ends with a block tag and a newline, which Jinja's trim_blocks removes: the model's
# template then starts on a fresh line, so it renders (and strips whitespace) exactly as alone.

# The fallback for tokenizers without any template, the same text as citi.data.render's.
PLAIN_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | capitalize }}: {{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}Assistant: {% endif %}"
)

_SENTINEL = "citi_probe_7f3a"
TOOLS_HEADER = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
TOOLS_FOOTER = (
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)


def _call_text(call: dict[str, Any]) -> str:
    fn = call.get("function", call)
    args = fn.get("arguments", {})
    args = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
    name = json.dumps(fn["name"], ensure_ascii=False)
    return f'<tool_call>\n{{"name": {name}, "arguments": {args}}}\n</tool_call>'


def hermes_messages(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """What :data:`TOOL_PRELUDE` does to a conversation, in Python: citi renders with it (a
    Jinja rewrite costs several times the model's template); tests check both agree byte for
    byte. A conversation without tools, calls or tool results is returned as it is."""
    if not tools and not any(m.get("tool_calls") or m["role"] == "tool" for m in messages):
        return messages
    out: list[dict[str, Any]] = []
    rest = messages
    if tools:
        listing = (
            TOOLS_HEADER
            + "".join("\n" + json.dumps(t, ensure_ascii=False) for t in tools)
            + TOOLS_FOOTER
        )
        if messages and messages[0]["role"] == "system":
            out.append({"role": "system", "content": messages[0]["content"] + "\n\n" + listing})
            rest = messages[1:]
        else:
            out.append({"role": "system", "content": listing})
    previous = None
    for m in rest:
        if m["role"] == "tool":
            block = f"<tool_response>\n{m.get('content') or ''}\n</tool_response>"
            if previous == "tool":
                out[-1] = {"role": "user", "content": out[-1]["content"] + "\n" + block}
            else:
                out.append({"role": "user", "content": block})
        elif m["role"] == "assistant" and m.get("tool_calls"):
            text = m.get("content") or ""
            for call in m["tool_calls"]:
                text += ("\n" if text else "") + _call_text(call)
            out.append({"role": "assistant", "content": text})
        else:
            out.append(m)
        previous = m["role"]
    return out


def render_chat(
    tokenizer,
    template: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    add_generation_prompt: bool = False,
) -> str:
    """``template`` applied as ``apply_chat_template`` would (None-valued keys dropped, the
    tokenizer's special tokens passed), without its per-call overhead. A template that starts
    with :data:`TOOL_PRELUDE` has the prelude applied in Python (:func:`hermes_messages`)."""
    from transformers.utils.chat_template_utils import render_jinja_template

    clean = [{k: v for k, v in m.items() if v is not None} for m in messages]
    if template.startswith(TOOL_PRELUDE):
        clean = hermes_messages(clean, tools)
        template, tools = template[len(TOOL_PRELUDE) :], None
    # transformers annotates the return as ``str`` but returns (renders, generation indices).
    rendered, _ = cast(
        "tuple[list[str], list]",
        render_jinja_template(
            conversations=[clean],
            tools=list(tools) if tools else None,
            chat_template=template,
            add_generation_prompt=add_generation_prompt,
            **tokenizer.special_tokens_map,
        ),
    )
    return rendered[0]


def supports_tools(tokenizer, template: str) -> bool:
    """Whether ``template`` renders a tool listing, an assistant's call and a tool result (a
    sentinel of each must appear; a template that ignores or rejects them does not)."""
    tool = {
        "type": "function",
        "function": {
            "name": f"{_SENTINEL}_tool",
            "description": "probe",
            "parameters": {"type": "object", "properties": {}},
        },
    }
    call = {
        "id": "call_0",
        "type": "function",
        "function": {"name": f"{_SENTINEL}_call", "arguments": {}},
    }
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": f"{_SENTINEL}_result", "tool_call_id": "call_0"},
        {"role": "assistant", "content": "ok"},
    ]
    try:
        text = render_chat(tokenizer, template, messages, [tool])
    except Exception:  # a template that raises on tools does not support them
        return False
    return all(f"{_SENTINEL}_{s}" in text for s in ("tool", "call", "result"))


@lru_cache(maxsize=32)
def _read_override(path: str) -> str:
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"--chat-template: {file} is not a file")
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"--chat-template: cannot read {file} ({err})") from None


_CHOSEN: dict[tuple[str, str | None], str] = {}


def chat_template_for(tokenizer, override: str | None = None) -> str:
    """The Jinja template citi renders with: ``override`` (a file, or template text), else the
    model's own template when it renders tools, else :data:`TOOL_PRELUDE` + the model's template
    (a plain ``Role: text`` template for tokenizers without one)."""
    if override:
        return override if ("{%" in override or "{{" in override) else _read_override(override)
    own = getattr(tokenizer, "chat_template", None) or None
    if isinstance(own, dict):  # several named templates: the default one
        own = own.get("default") or next(iter(own.values()))
    key = (type(tokenizer).__name__, own)
    if key not in _CHOSEN:
        if own is not None and supports_tools(tokenizer, own):
            _CHOSEN[key] = own
        else:
            _CHOSEN[key] = TOOL_PRELUDE + (own or PLAIN_TEMPLATE)
    return _CHOSEN[key]


def render_generation_prompt(
    tokenizer,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    template: str | None = None,
) -> str:
    """The text a model sees before it answers the next assistant turn, tools listed the way
    training rendered them."""
    template = template or chat_template_for(tokenizer)
    try:
        return render_chat(tokenizer, template, messages, tools, add_generation_prompt=True)
    except Exception as err:  # jinja's TemplateError, or a template's own raise_exception
        raise DataError(f"the chat template cannot render this conversation ({err})") from None
