import json

import pytest

from citi.data.conversations import (
    load_conversations,
    split_conversations,
    to_examples,
    write_conversations,
)
from citi.errors import ConfigError, DataError
from tests.fixtures import tool_data as td


def _load(tmp_path, rec, fmt="auto", name="data.jsonl"):
    return load_conversations(td.write_jsonl(tmp_path / name, [rec]), fmt)


@pytest.mark.parametrize("fmt", ["messages", "sharegpt", "hermes"])
def test_each_format_converts_to_the_same_canonical_row(tmp_path, fmt):
    rec = {"messages": td.MESSAGES, "sharegpt": td.SHAREGPT, "hermes": td.HERMES}[fmt]
    for given in ("auto", fmt):  # recognised from the keys, or named
        (conv,) = _load(tmp_path, rec, given)
        assert conv.to_json() == td.CANONICAL
        assert conv.is_tool


def test_xlam_types_become_json_schema(tmp_path):
    (conv,) = _load(tmp_path, td.XLAM)
    assert conv.to_json() == td.XLAM_CANONICAL


def test_alpaca_and_apibank_rows(tmp_path):
    (alpaca,) = _load(tmp_path, td.ALPACA)
    assert alpaca.to_json() == {
        "messages": [
            {"role": "user", "content": "Name a colour."},
            {"role": "assistant", "content": "Blue."},
        ]
    }
    assert not alpaca.is_tool
    (api,) = _load(tmp_path, td.APIBANK)
    # API-Bank's calls stay text; the row is tool data by its format.
    assert api.messages[-1]["content"] == td.APIBANK["output"] and api.is_tool


def test_json_list_file_and_canonical_round_trip(tmp_path):
    src = tmp_path / "glaive.json"
    src.write_text(json.dumps(td.glaive_like(6)), encoding="utf-8")
    convs = load_conversations(src)
    assert [c.is_tool for c in convs] == [i % 3 != 0 for i in range(6)]
    out = write_conversations(convs, tmp_path / "canon.jsonl")
    again = load_conversations(out, "messages")
    assert [c.to_json() for c in again] == [c.to_json() for c in convs]


def test_task_field_overrides_the_label(tmp_path):
    rec = dict(td.MESSAGES, task="general")
    (conv,) = _load(tmp_path, rec)
    assert not conv.is_tool


def test_parquet_and_save_to_disk_sources(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = td.glaive_like(4)
    ds = datasets.Dataset.from_list(rows)
    ds.to_parquet(str(tmp_path / "rows.parquet"))
    ds.save_to_disk(str(tmp_path / "saved"))
    want = [c.to_json() for c in load_conversations(td.write_jsonl(tmp_path / "r.jsonl", rows))]
    for src in (tmp_path / "rows.parquet", tmp_path / "saved"):
        assert [c.to_json() for c in load_conversations(src)] == want


def test_struct_columns_lose_their_null_padding(tmp_path):
    datasets = pytest.importorskip("datasets")
    # Arguments as objects (not JSON text): Arrow unifies the struct, padding with None.
    calls = [{"a": 1}, {"b": "x"}]
    rows = [
        {
            "messages": [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": a}}],
                },
            ]
        }
        for a in calls
    ]
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "s.parquet"))
    got = [
        c.messages[1]["tool_calls"][0]["function"]["arguments"]
        for c in load_conversations(tmp_path / "s.parquet")
    ]
    assert got == calls


def test_split_holds_out_whole_conversations_by_a_fixed_seed(tmp_path):
    convs = load_conversations(td.write_jsonl(tmp_path / "g.jsonl", td.glaive_like(20)))
    kept, held = split_conversations(convs, 0.25)
    assert len(held) == 5 and len(kept) == 15
    assert not {c.where for c in kept} & {c.where for c in held}
    assert split_conversations(convs, 0.25) == (kept, held)
    with pytest.raises(ConfigError, match="--eval-fraction"):
        split_conversations(convs, 1.5)


def test_examples_carry_tools_labels_and_supervision(tmp_path):
    convs = load_conversations(td.write_jsonl(tmp_path / "g.jsonl", td.glaive_like(3)))
    exs = to_examples(convs, "tool", "g", supervise="last")
    assert [e.task_type for e in exs] == [0, 1, 1]
    assert exs[1].tools and exs[1].supervise == "last"
    assert exs[1].messages[exs[1].target]["role"] == "assistant"


BAD = [
    ({"messages": [{"role": "robot", "content": "x"}]}, "unknown role 'robot'"),
    (
        {
            "messages": [
                {"role": "user", "content": "x", "tool_calls": [{"name": "f", "arguments": {}}]},
                {"role": "assistant", "content": "y"},
            ]
        },
        "tool_calls' on a user turn",
    ),
    (
        {
            "messages": [
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "tool_calls": [{"function": {"name": "f", "arguments": "{oops"}}],
                },
            ]
        },
        "arguments of f is not valid JSON",
    ),
    (
        {
            "messages": [
                {"role": "user", "content": "x"},
                {"role": "tool", "content": "42"},
                {"role": "assistant", "content": "y"},
            ]
        },
        "tool result with no tool call before it",
    ),
    (
        {
            "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}],
            "tools": [{"nope": 1}],
        },
        "not a function schema",
    ),
    ({"messages": [{"role": "user", "content": "x"}]}, "no assistant turn"),
    ({"messages": "hello"}, "'messages' must be a non-empty list"),
]


@pytest.mark.parametrize(("rec", "message"), BAD)
def test_bad_rows_name_file_line_and_field(tmp_path, rec, message):
    # The first row fixes the format; the second is the bad one, named by file and line.
    path = td.write_jsonl(tmp_path / "bad.jsonl", [td.MESSAGES, rec])
    with pytest.raises(DataError, match=message) as err:
        load_conversations(path)
    assert str(err.value).startswith(f"{path}:2: ")


@pytest.mark.parametrize(
    ("rec", "message"),
    [
        ({"conversations": [{"from": "alien", "value": "x"}]}, "unknown role 'alien'"),
        ({"foo": 1}, "cannot recognise the format from the keys \\(foo\\)"),
        ({"messages": [], "conversations": []}, "could be messages or sharegpt"),
    ],
)
def test_unrecognised_shapes_name_the_candidates(tmp_path, rec, message):
    path = td.write_jsonl(tmp_path / "bad.jsonl", [rec])
    with pytest.raises(DataError, match=message):
        load_conversations(path, where="--tool-data")


def test_empty_missing_and_offline_sources(tmp_path, monkeypatch):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_conversations(empty)
    with pytest.raises(DataError, match="file not found"):
        load_conversations(tmp_path / "nope.jsonl")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="cannot load this hub dataset"):
        load_conversations("someone/not-a-dataset")
    with pytest.raises(ConfigError, match="--format"):
        load_conversations(empty, "csv")


def test_a_100k_row_file_loads(tmp_path):
    row = {"messages": [{"role": "user", "content": "hé"}, {"role": "assistant", "content": "ok"}]}
    path = td.write_jsonl(tmp_path / "big.jsonl", [row] * 100_000)
    convs = load_conversations(path)
    assert len(convs) == 100_000 and convs[-1].where == f"{path}:100000"
