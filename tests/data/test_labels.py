import pytest

from citi.data import IGNORE_INDEX, encode, load_dataset
from citi.data.canonical import conversation
from citi.data.conversations import to_examples
from citi.data.example import single_turn
from citi.data.labels import EncodeStats, encode_conversation
from citi.errors import DataError
from tests.fixtures import tool_data as td

CALL = (
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Zürich", "days": 2}}\n</tool_call>'
)


def _example(row, supervise="all"):
    (ex,) = to_examples([conversation(row, "hand-made")], "tool", "t", supervise)
    return ex


def _runs(tok, enc):
    """The supervised tokens as text, one string per contiguous run."""
    runs, current = [], []
    for ids, label in zip(enc.input_ids, enc.labels, strict=True):
        if label != IGNORE_INDEX:
            assert label == ids  # a label is the token itself
            current.append(ids)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return [tok.decode(r) for r in runs]


def test_labels_cover_exactly_the_assistant_turns_token_by_token(tiny_llama):
    tok = tiny_llama.tokenizer
    enc = encode(tok, _example(td.CANONICAL), max_length=4096)
    want = [f"{CALL}<|im_end|>", "It is 21 °C in Zürich.<|im_end|>", "You're welcome.<|im_end|>"]
    assert _runs(tok, enc) == want
    # Token by token: the byte tokenizer gives one token per byte (special tokens one each), so
    # the label mask must be exactly the characters of the three turns and nothing else.
    text = tok.decode(enc.input_ids)
    mask = []
    pos = 0
    for span in want:
        start = text.index(span, pos)
        mask += [False] * len(tok(text[pos:start], add_special_tokens=False)["input_ids"])
        mask += [True] * len(tok(span, add_special_tokens=False)["input_ids"])
        pos = start + len(span)
    assert pos == len(text)  # nothing after the last supervised turn is kept
    assert [lab != IGNORE_INDEX for lab in enc.labels] == mask
    # System (the tool listing), user turns and tool results are never supervised.
    unsupervised = tok.decode(
        [i for i, lab in zip(enc.input_ids, enc.labels, strict=True) if lab == IGNORE_INDEX]
    )
    for never in ("<tools>", "Weather in Zürich", "<tool_response>", "Thanks!"):
        assert never in unsupervised


def test_supervise_last_labels_only_the_final_turn(tiny_llama):
    tok = tiny_llama.tokenizer
    enc = encode(tok, _example(td.CANONICAL, "last"), max_length=4096)
    assert _runs(tok, enc) == ["You're welcome.<|im_end|>"]


def test_a_plain_turn_encodes_as_the_named_datasets_do(tiny_llama, data_dir):
    tok = tiny_llama.tokenizer
    for legacy in load_dataset("gsm8k", data_dir)[:3]:
        row = {"messages": [dict(m) for m in legacy.messages]}
        new = encode(tok, _example(row), 4096)
        old = encode(tok, legacy, 4096)
        assert (new.input_ids, new.labels) == (old.input_ids, old.labels)


def test_over_long_rows_lose_whole_early_exchanges(tiny_llama):
    tok = tiny_llama.tokenizer
    long_first = {
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "x" * 400},
            {"role": "assistant", "content": "y" * 50},
            *td.CANONICAL["messages"],
        ],
        "tools": td.CANONICAL["tools"],
    }
    stats = EncodeStats()
    full = encode_conversation(tok, _example(long_first), 10_000, stats=stats)
    enc = encode_conversation(tok, _example(long_first), len(full.input_ids) - 100, stats=stats)
    runs = _runs(tok, enc)
    # The first exchange is gone whole; the call, its result and the rest are kept whole.
    assert runs[0] == f"{CALL}<|im_end|>" and "y" * 50 not in tok.decode(enc.input_ids)
    assert tok.decode(enc.input_ids).startswith("<|im_start|>system\nsys\n\n# Tools")
    assert stats.shortened == 1 and stats.encoded == 2
    # Too short for even the last exchange: the row is dropped and counted.
    assert encode_conversation(tok, _example(long_first), 64, stats=stats) is None
    assert stats.to_dict()["dropped_rows"] == 1 and stats.dropped == ["hand-made"]


def test_a_template_that_drops_calls_is_an_error(tiny_llama):
    tok = tiny_llama.tokenizer
    drops = (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content or '' }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    with pytest.raises(DataError, match="hand-made: the chat template does not list the tool"):
        encode(tok, _example(td.CANONICAL), 4096, template=drops)
    no_tools = {"messages": td.CANONICAL["messages"][:2]}
    with pytest.raises(DataError, match="drops the call to get_weather in assistant turn 1"):
        encode(tok, _example(no_tools), 4096, template=drops)
    raises = "{{ messages[0]['content'] + undefined_thing }}"
    with pytest.raises(DataError, match="cannot render this conversation"):
        encode(tok, _example(no_tools), 4096, template=raises)


def test_named_example_path_is_unchanged(tiny_llama):
    tok = tiny_llama.tokenizer
    ex = single_turn("hi", "yo", task_type=0, ability="instruction", source="t")
    enc = encode(tok, ex, 128)
    assert _runs(tok, enc) == ["yo<|im_end|>"]


def test_a_long_conversation_keeps_every_turn(tiny_llama):
    tok = tiny_llama.tokenizer
    messages = []
    for i in range(60):
        messages += [
            {"role": "user", "content": f"q{i} ünï"},
            {"role": "assistant", "content": f"a{i} ✓"},
        ]
    enc = encode(tok, _example({"messages": messages}), max_length=100_000)
    assert _runs(tok, enc) == [f"a{i} ✓<|im_end|>" for i in range(60)]
