import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citi.evaluation.toolcalls.parse import (
    PARSE_ERRORS,
    ParsedOutput,
    hermes_call_text,
    parse_tool_calls,
)

CALL = {"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}\n'
        "</tool_call>",
        '{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}',
        '[{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}]',
        '{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\", \\"days\\": 3}"}',
        '{"type": "function", "function": {"name": "get_weather", '
        '"arguments": {"city": "Paris", "days": 3}}}',
        '{"tool_calls": [{"type": "function", "function": {"name": "get_weather", '
        '"arguments": "{\\"city\\": \\"Paris\\", \\"days\\": 3}"}}]}',
        '{"name": "get_weather", "parameters": {"city": "Paris", "days": 3}}',  # Llama 3
        '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris", "days": 3}}',
        '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}]',
        '```json\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}\n```',
        "[get_weather(city='Paris', days=3)]",
        'get_weather(city="Paris", days=3)',
    ],
)
def test_every_format_gives_the_same_call(text):
    parsed = parse_tool_calls(text)
    assert parsed.error is None
    assert parsed.calls == [CALL]
    assert parsed.content == ""


def test_hermes_keeps_the_text_around_the_calls_and_reads_several_blocks():
    text = (
        "Let me check both.\n"
        + hermes_call_text(CALL)
        + "\n"
        + hermes_call_text({"name": "get_time", "arguments": {}})
    )
    parsed = parse_tool_calls(text)
    assert parsed.content == "Let me check both."
    assert [c["name"] for c in parsed.calls] == ["get_weather", "get_time"]


def test_a_call_without_arguments_needs_a_tag_or_a_wrapper():
    assert parse_tool_calls('<tool_call>{"name": "now"}</tool_call>').calls == [
        {"name": "now", "arguments": {}}
    ]
    assert parse_tool_calls('{"type": "function", "function": {"name": "now"}}').calls == [
        {"name": "now", "arguments": {}}
    ]
    assert parse_tool_calls('{"name": "now", "arguments": null}').calls == [
        {"name": "now", "arguments": {}}
    ]


def test_an_unclosed_last_block_is_read_when_its_json_is_complete():
    parsed = parse_tool_calls('<tool_call>\n{"name": "f", "arguments": {"a": 1}}')
    assert parsed.calls == [{"name": "f", "arguments": {"a": 1}}] and parsed.error is None


def test_an_empty_tag_pair_in_prose_is_no_call():
    # The Hermes prelude says "within <tool_call></tool_call> XML tags"; a model echoing it has
    # not tried to call (vLLM's hermes parser returns such output as text too).
    text = "This function returns its arguments within <tool_call></tool_call> XML tags."
    parsed = parse_tool_calls(text)
    assert parsed.calls == [] and parsed.error is None and not parsed.attempted
    assert parsed.content == text
    both = (
        'Use <tool_call> </tool_call>.\n<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>'
    )
    assert parse_tool_calls(both).calls == [{"name": "f", "arguments": {}}]
    assert parse_tool_calls("Calling:\n<tool_call>").error == "invalid_json"  # opened, cut off


def test_several_bare_json_calls_and_trailing_text():
    parsed = parse_tool_calls('{"name": "a", "arguments": {}}; {"name": "b", "arguments": {}} ok')
    assert [c["name"] for c in parsed.calls] == ["a", "b"] and parsed.content == "ok"


def test_pythonic_json_words_lists_and_bare_names():
    parsed = parse_tool_calls("[f(flag=true, none=null, xs=(1, 2), unit=celsius), g()]")
    assert parsed.calls == [
        {"name": "f", "arguments": {"flag": True, "none": None, "xs": [1, 2], "unit": "celsius"}},
        {"name": "g", "arguments": {}},
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("<tool_call>\nnot json\n</tool_call>", "invalid_json"),
        ('<tool_call>{"arguments": {}}</tool_call>', "invalid_call"),
        ('<tool_call>{"name": "f", "arguments": [1]}</tool_call>', "invalid_call"),
        ('<tool_call>{"name": "", "arguments": {}}</tool_call>', "invalid_call"),
        ('{"name": "f", "arguments": "{not json"}', "invalid_json"),
        ('{"name": "get_weather", "arguments": {"city": "Par', "invalid_json"),  # cut off
        ("get_weather('Paris')", "invalid_python"),  # positional: no parameter name
        ("[f(x=__import__('os').system('true'))]", "invalid_python"),  # never evaluated
        ("f(x={1, 2})", "invalid_python"),  # a set is not JSON
        ("f(**kw)", "invalid_python"),
    ],
)
def test_a_failed_call_stays_text_with_its_error_class(text, error):
    parsed = parse_tool_calls(text)
    assert parsed.error == error and error in PARSE_ERRORS
    assert parsed.calls == [] and parsed.content == text.strip() and parsed.attempted


@pytest.mark.parametrize(
    "text",
    [
        "The weather in Paris is sunny.",
        "",
        "[1] See the reference.",
        '{"answer": 42}',  # JSON for the user, not a call
        '{"name": "Ada", "age": 36}',  # data with a name, not a call
        '[{"name": "Ada"}, {"name": "Bob"}]',
        "[1, 2, 3]",
        "Use print() to debug.",
        "[" * 3000,
        '{\n "root": {\n "data": {\n "name": "Sample data"',  # cut-off JSON, not a call
    ],
)
def test_prose_is_content_without_error(text):
    parsed = parse_tool_calls(text)
    assert parsed == ParsedOutput(text.strip(), [], None) and not parsed.attempted


def test_a_runaway_generation_is_not_parsed():
    text = '{"name": "f", "arguments": {"a": "' + "x" * 30_000 + '"}}'
    parsed = parse_tool_calls(text)
    assert parsed.calls == [] and parsed.error == "too_long"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
_call = st.fixed_dictionaries(
    {
        "name": st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,20}", fullmatch=True),
        "arguments": st.dictionaries(st.text(min_size=1), _json, max_size=4),
    }
)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_the_parser_never_raises_on_any_text(text):
    parsed = parse_tool_calls(text)
    assert isinstance(parsed.content, str)
    assert parsed.error is None or parsed.error in PARSE_ERRORS
    assert all(isinstance(c["arguments"], dict) for c in parsed.calls)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from("<>{}[]()\"'=,:_ \ntool_call/abcf123"), max_size=120))
def test_the_parser_never_raises_on_call_like_text(text):
    parse_tool_calls(text)
    parse_tool_calls("<tool_call>" + text)


@settings(max_examples=100, deadline=None)
@given(
    st.text(max_size=40).filter(lambda t: "<tool_call>" not in t),
    st.lists(_call, min_size=1, max_size=3),
)
def test_rendered_hermes_calls_round_trip(prefix, calls):
    text = prefix + "\n" + "\n".join(hermes_call_text(c) for c in calls)
    parsed = parse_tool_calls(text)
    assert parsed.error is None
    assert parsed.calls == [{"name": c["name"], "arguments": c["arguments"]} for c in calls]
    assert parsed.content == prefix.strip()


@settings(max_examples=60, deadline=None)
@given(st.lists(_call, min_size=1, max_size=3))
def test_json_calls_round_trip(calls):
    text = json.dumps(calls)
    assert parse_tool_calls(text).calls == calls


@settings(max_examples=25, deadline=None)
@given(st.text(max_size=30).filter(lambda t: "<" not in t), st.lists(_call, min_size=1, max_size=3))
def test_calls_rendered_by_citis_chat_template_parse_back(tiny_llama, text, calls):
    """What training renders as an assistant turn is what evaluation reads back."""
    chat_template = pytest.importorskip("citi.data.chat_template")
    tok = tiny_llama.tokenizer
    tools = [{"type": "function", "function": {"name": c["name"], "parameters": {}}} for c in calls]
    history = [{"role": "user", "content": "go"}]
    answer = {
        "role": "assistant",
        "content": text,
        "tool_calls": [
            {"id": f"c{i}", "type": "function", "function": c} for i, c in enumerate(calls)
        ],
    }
    prompt = chat_template.render_generation_prompt(tok, history, tools)
    full = tok.apply_chat_template(
        [*history, answer],
        tools=tools,
        chat_template=chat_template.chat_template_for(tok),
        tokenize=False,
    )
    assert full.startswith(prompt)
    turn = full[len(prompt) :].split("<|im_end|>")[0]
    parsed = parse_tool_calls(turn)
    assert parsed.error is None and parsed.calls == calls
    assert parsed.content == text.strip()
