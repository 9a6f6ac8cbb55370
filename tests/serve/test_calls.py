"""A generation read back as content or calls, and streamed without ever leaking call text."""

import json

from citi.serve.calls import StreamSplitter, forced_prefix, read_answer

CALL = '<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call>'


def _stream(text: str, parses: bool = True, prefix: str = "", name=None):
    splitter = StreamSplitter(parses, prefix)
    sent = "".join(splitter.feed(text[:i]) for i in range(1, len(text) + 1))
    rest, answer = splitter.finish(text, "stop", name)
    return sent + rest, answer


def test_text_then_a_call_streams_the_text_and_holds_the_call():
    content, answer = _stream("Let me look. " + CALL)
    assert "<tool" not in content and content.strip() == "Let me look."
    assert answer.calls == [{"name": "f", "arguments": {"x": 1}}]
    assert answer.finish == "tool_calls"


def test_a_broken_call_comes_back_as_text_streamed_or_not():
    broken = '<tool_call>\n{"name": "f", "arguments": {"x": 1\n</tool_call>'
    content, answer = _stream("Hi " + broken)
    assert content == "Hi " + broken and answer.calls == [] and answer.finish == "stop"
    plain = read_answer("Hi " + broken, True, "length", None)
    assert (plain.content, plain.calls, plain.finish) == ("Hi " + broken, [], "length")


def test_text_that_only_looks_like_a_tag_start_is_released_in_the_end():
    content, answer = _stream("a < b and <tool")
    assert content == "a < b and <tool" and not answer.calls


def test_without_tools_a_call_shaped_answer_is_text():
    content, answer = _stream(CALL, parses=False)
    assert content == CALL and answer.calls == [] and answer.content == CALL


def test_a_forced_call_is_completed_and_must_name_the_function():
    prefix = forced_prefix("function", "f")
    assert CALL.startswith(prefix)
    _, answer = _stream(CALL[len(prefix) :], prefix=prefix, name="f")
    assert answer.calls == [{"name": "f", "arguments": {"x": 1}}]
    wrong = read_answer(CALL.replace('"f"', '"g"'), True, "stop", "f")
    assert wrong.calls == [] and wrong.finish == "stop"
    assert json.loads(forced_prefix("required", None)[len("<tool_call>\n") :] + 'f"}')
