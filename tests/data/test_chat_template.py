import json

import pytest

from citi.data.canonical import conversation
from citi.data.chat_template import (
    PLAIN_TEMPLATE,
    TOOL_PRELUDE,
    chat_template_for,
    render_chat,
    render_generation_prompt,
    supports_tools,
)
from citi.errors import ConfigError
from citi.models.tiny import CHATML_TEMPLATE
from tests.fixtures import tool_data as td

# SmolLM2-135M-Instruct's template as its GGUF ships it: no tool support, a default system turn.
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# A template with its own tool support (Hermes style, like Qwen2.5's, much shortened).
NATIVE_TOOLS_TEMPLATE = (
    "{% if tools %}<tools>{% for t in tools %}{{ t | tojson }}{% endfor %}</tools>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content or '' }}"
    "{% for c in m.tool_calls or [] %}<tool_call>{{ c.function | tojson }}</tool_call>{% endfor %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TEMPLATES = [
    CHATML_TEMPLATE,
    SMOLLM2_TEMPLATE,
    PLAIN_TEMPLATE,
    "\n  {% for m in messages %}{{ m.content }}{% endfor %}",
]

PLAIN = [
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Zürich?"},
        {"role": "assistant", "content": "A city.  \n"},
        {"role": "user", "content": "More"},
    ],
]


def _rows():
    rows = [conversation(td.CANONICAL, "canonical")]
    rows += [
        conversation(json.loads(json.dumps(td.SHAREGPT_AS_MESSAGES[i])), f"r{i}") for i in range(2)
    ]
    return rows


@pytest.mark.parametrize("template", TEMPLATES)
def test_prelude_leaves_plain_chat_byte_identical(tiny_llama, template):
    tok = tiny_llama.tokenizer
    for messages in PLAIN:
        for gen in (False, True):
            alone = tok.apply_chat_template(
                messages, chat_template=template, tokenize=False, add_generation_prompt=gen
            )
            with_prelude = tok.apply_chat_template(
                messages,
                chat_template=TOOL_PRELUDE + template,
                tokenize=False,
                add_generation_prompt=gen,
            )
            assert with_prelude == alone


@pytest.mark.parametrize("template", [CHATML_TEMPLATE, SMOLLM2_TEMPLATE])
def test_python_rewrite_matches_the_jinja_prelude(tiny_llama, template):
    tok = tiny_llama.tokenizer
    for conv in _rows():
        messages, tools = [dict(m) for m in conv.messages], list(conv.tools) or None
        for end in range(1, len(messages) + 1):
            for gen in (False, True):
                jinja = tok.apply_chat_template(
                    messages[:end],
                    tools=tools,
                    chat_template=TOOL_PRELUDE + template,
                    tokenize=False,
                    add_generation_prompt=gen,
                )
                assert (
                    render_chat(tok, TOOL_PRELUDE + template, messages[:end], tools, gen) == jinja
                )


def test_hermes_rendering_of_tools_calls_and_results(tiny_llama):
    tok = tiny_llama.tokenizer
    conv = conversation(td.CANONICAL, "x")
    text = render_chat(tok, chat_template_for(tok), list(conv.messages), list(conv.tools))
    assert text.startswith("<|im_start|>system\n# Tools\n")
    assert (
        "<tools>\n" + json.dumps(td.CANONICAL["tools"][0], ensure_ascii=False) + "\n</tools>"
        in text
    )
    assert (
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": '
        '{"city": "Zürich", "days": 2}}\n</tool_call><|im_end|>' in text
    )
    assert '<|im_start|>user\n<tool_response>\n{"temp_c": 21}\n</tool_response><|im_end|>' in text


def test_two_calls_and_their_results_share_turns(tiny_llama):
    tok = tiny_llama.tokenizer
    row = {
        "messages": [
            {"role": "user", "content": "a and b"},
            {
                "role": "assistant",
                "content": "Calling both.",
                "tool_calls": [
                    {"name": "a", "arguments": {}},
                    {"name": "b", "arguments": {"x": 1}},
                ],
            },
            {"role": "tool", "content": "A"},
            {"role": "tool", "content": "B"},
            {"role": "assistant", "content": "done"},
        ]
    }
    text = render_chat(tok, chat_template_for(tok), list(conversation(row, "x").messages))
    assert (
        'Calling both.\n<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call>\n'
        '<tool_call>\n{"name": "b", "arguments": {"x": 1}}\n</tool_call><|im_end|>' in text
    )
    assert (
        "<tool_response>\nA\n</tool_response>\n<tool_response>\nB\n</tool_response><|im_end|>"
        in text
    )


def test_every_assistant_turn_is_prefix_preserving(tiny_llama):
    tok = tiny_llama.tokenizer
    template = chat_template_for(tok)
    for conv in _rows():
        messages, tools = list(conv.messages), list(conv.tools) or None
        full = render_chat(tok, template, messages, tools)
        for i in conv.assistant_turns:
            prompt = render_generation_prompt(tok, messages[:i], tools)
            upto = render_chat(tok, template, messages[: i + 1], tools)
            assert upto.startswith(prompt) and full.startswith(upto)


def test_probe_tells_templates_with_tools_from_those_without(tiny_llama):
    tok = tiny_llama.tokenizer
    assert not supports_tools(tok, SMOLLM2_TEMPLATE)
    assert not supports_tools(tok, CHATML_TEMPLATE)
    assert supports_tools(tok, NATIVE_TOOLS_TEMPLATE)
    assert chat_template_for(tok) == TOOL_PRELUDE + CHATML_TEMPLATE


def test_native_template_is_used_as_it_is(tiny_llama, monkeypatch):
    tok = tiny_llama.tokenizer
    monkeypatch.setattr(tok, "chat_template", NATIVE_TOOLS_TEMPLATE)
    assert chat_template_for(tok) == NATIVE_TOOLS_TEMPLATE


def test_override_file_and_errors(tiny_llama, tmp_path):
    tok = tiny_llama.tokenizer
    path = tmp_path / "t.jinja"
    path.write_text(NATIVE_TOOLS_TEMPLATE)
    assert chat_template_for(tok, str(path)) == NATIVE_TOOLS_TEMPLATE
    with pytest.raises(ConfigError, match="--chat-template: .* is not a file"):
        chat_template_for(tok, str(tmp_path / "missing.jinja"))
