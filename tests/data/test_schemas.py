"""Records that are well-formed JSON but wrong: one error line naming file, record and field,
never another exception type (property-based: hypothesis mutates one field of one record)."""

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citi.cli.main import main
from citi.data import load_dataset
from citi.data.records import read_records
from citi.errors import CitiError

# dataset name -> (file under the data directory, is JSON Lines)
FILES = {
    "apibank-train": ("api_bank/train/lv3-train.json.gz", False),
    "apibank-l2": ("api_bank/test/level-2-api.json", False),
    "gsm8k": ("gsm8k/train.jsonl", True),
    "codealpaca": ("codealpaca/code_alpaca_2k.json", False),
    "alpaca": ("alpaca/alpaca_en_demo.json", False),
    "triviaqa": ("triviaqa/triviaqa_sm_sub.jsonl", True),
    "ifeval": ("ifeval/input_data.jsonl", True),
    "mtbench": ("mtbench/question.jsonl", True),
    "toolalpaca-sim": ("toolalpaca/eval_simulated.json", False),
    "bfcl-simple": ("bfcl/BFCL_v4_simple_python.json", True),
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def _write(path: Path, records: list, lines: bool) -> None:
    text = "".join(json.dumps(r) + "\n" for r in records) if lines else json.dumps(records)
    if path.suffix == ".gz":
        import gzip

        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("name", sorted(FILES))
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_a_mutated_record_loads_or_is_one_data_error(data_dir, name, data):
    rel, lines = FILES[name]
    records = read_records(data_dir / rel, lines=lines)
    index = data.draw(st.integers(0, min(len(records), 3) - 1))
    record = dict(records[index])
    key = data.draw(st.sampled_from(sorted(record)) | st.text(min_size=1, max_size=6))
    if data.draw(st.booleans()):
        record[key] = data.draw(json_values)
    else:
        record.pop(key, None)
    records = [*records[:index], record, *records[index + 1 :]]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(data_dir, root, dirs_exist_ok=True)
        _write(root / rel, records, lines)
        try:
            examples = load_dataset(name, root)
        except CitiError as err:
            assert str(err).startswith(str(root)) and "\n" not in str(err)
            return
        assert all(isinstance(m["content"], str) for e in examples for m in e.messages)


@pytest.mark.parametrize(
    "name, change, needle",
    [
        ("gsm8k", {"answer": 5}, "field 'answer' must be text, got 5"),
        ("alpaca", {"output": None}, "field 'output' must be text, got null"),
        ("mtbench", {"turns": []}, "field 'turns' must be a non-empty list of text"),
        ("apibank-l2", {"expected_output": {"a": 1}}, "field 'expected_output' must be text"),
        ("triviaqa", {"aliases": [1]}, "field 'aliases' must be a list of text"),
    ],
)
def test_wrong_field_types_are_one_error_line_through_the_cli(
    tmp_path, data_dir, capsys, name, change, needle
):
    rel, lines = FILES[name]
    root = tmp_path / "data"
    shutil.copytree(data_dir, root)
    records = read_records(root / rel, lines=lines)
    records[0] = {**records[0], **change}
    _write(root / rel, records, lines)
    assert main(["data", "show", name, "--data-dir", str(root), "-n", "3000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("citi: error:") and "record 1" in err[0]
    assert needle in err[0] and rel.removesuffix(".gz") in err[0]
