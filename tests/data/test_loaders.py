import gzip
import json

import pytest

from citi.data import DATASETS, load_dataset
from citi.data.registry import triviaqa_split
from citi.errors import DataError


def test_apibank_train_reads_gzip_and_joins_instruction_and_input(data_dir):
    ex = load_dataset("apibank-train", data_dir)
    assert len(ex) == 16
    first = ex[0]
    assert first.task_type == 1 and first.ability == "tool" and first.source == "apibank-train"
    assert [m["role"] for m in first.messages] == ["user", "assistant"]
    assert first.target == 1
    assert first.messages[0]["content"].endswith("Generate API Request: ")
    assert first.reference == "API-Request: [GetWeather(city='Paris', day='tomorrow')]"


def test_apibank_test_files(data_dir):
    api = load_dataset("apibank-l2", data_dir)
    assert len(api) == 2
    assert api[0].meta["file"] == "AddReminder-level-2-1.jsonl" and api[1].meta["id"] == 2
    assert api[0].reference.startswith("API-Request: [AddReminder(")
    resp = load_dataset("apibank-l2-response", data_dir)
    assert resp[0].reference == "Your reminder to call Bob has been added."


def test_general_loaders(data_dir):
    gsm = load_dataset("gsm8k", data_dir)
    assert gsm[0].ability == "math" and gsm[0].task_type == 0
    assert "<<" not in gsm[0].reference and gsm[0].reference.endswith("#### 7")
    assert gsm[0].meta["final"] == "7"
    code = load_dataset("codealpaca", data_dir)
    assert code[1].messages[0]["content"] == "Reverse the given list in Python.\nitems = [1, 2, 3]"
    alpaca = load_dataset("alpaca", data_dir)
    assert alpaca[0].ability == "instruction"
    ifeval = load_dataset("ifeval", data_dir)
    assert ifeval[0].target is None and ifeval[0].meta["instruction_id_list"] == [
        "punctuation:no_comma"
    ]
    ta = load_dataset("toolalpaca-sim", data_dir)
    assert len(ta) == 2 and ta[1].meta["golden"][0]["Action"] == "getForecast"
    mt = load_dataset("mtbench", data_dir)
    assert mt[0].meta["turns"][1] == "Now make it rhyme."


def test_humaneval_comes_from_the_package(data_dir):
    he = load_dataset("humaneval", data_dir)
    assert len(he) == 164
    assert he[0].meta["task_id"] == "HumanEval/0" and "def " in he[0].meta["code_prompt"]


def test_triviaqa_split_is_disjoint_and_fixed(data_dir):
    train = load_dataset("triviaqa", data_dir)
    test = load_dataset("triviaqa-test", data_dir)
    assert len(train) + len(test) == 9
    assert not {e.meta["index"] for e in train} & {e.meta["index"] for e in test}
    assert train[0].messages[0]["content"].startswith("What is the capital of")
    assert triviaqa_split(3000)[1] == triviaqa_split(3000)[1]
    assert len(triviaqa_split(3000)[1]) == 1000
    assert "PARIS" in [e for e in train + test if e.reference == "Paris"][0].meta["aliases"]


def test_limit_and_seeded_sampling(data_dir):
    a = load_dataset("gsm8k", data_dir, limit=3, seed=1)
    b = load_dataset("gsm8k", data_dir, limit=3, seed=1)
    assert a == b and len(a) == 3
    assert load_dataset("gsm8k", data_dir, limit=2) == load_dataset("gsm8k", data_dir)[:2]


def test_missing_dataset_names_the_file_and_how_to_get_it(data_dir):
    with pytest.raises(DataError) as err:
        load_dataset("metamath", data_dir)
    msg = str(err.value)
    assert "metamath/MetaMathQA-395K.json" in msg and "citi data fetch metamath" in msg


def test_unknown_dataset_suggests(data_dir):
    with pytest.raises(DataError, match="did you mean 'gsm8k'"):
        load_dataset("gsm8kk", data_dir)


def test_malformed_jsonl_reports_file_and_line(tmp_path):
    (tmp_path / "gsm8k").mkdir()
    good = json.dumps({"question": "q", "answer": "a #### 1"})
    (tmp_path / "gsm8k" / "train.jsonl").write_text(f"{good}\n{good}\n{{broken\n")
    with pytest.raises(DataError, match=r"gsm8k/train.jsonl:3: malformed JSON"):
        load_dataset("gsm8k", tmp_path)


def test_malformed_json_list_reports_line(tmp_path):
    (tmp_path / "alpaca").mkdir()
    (tmp_path / "alpaca" / "alpaca_en_demo.json").write_text('[\n{"instruction": "x",\n]')
    with pytest.raises(DataError, match=r"alpaca_en_demo.json:3: malformed JSON"):
        load_dataset("alpaca", tmp_path)


def test_missing_field_names_record_and_field(tmp_path):
    (tmp_path / "codealpaca").mkdir()
    path = tmp_path / "codealpaca" / "code_alpaca_2k.json"
    path.write_text(json.dumps([{"instruction": "a", "output": "b"}, {"instruction": "c"}]))
    with pytest.raises(DataError, match="record 2 lacks field.s. output"):
        load_dataset("codealpaca", tmp_path)


def test_corrupt_gzip_is_a_clear_error(tmp_path):
    (tmp_path / "api_bank" / "train").mkdir(parents=True)
    (tmp_path / "api_bank" / "train" / "lv3-train.json.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="cannot read"):
        load_dataset("apibank-train", tmp_path)
    # A valid gzip of valid records is fine.
    with gzip.open(tmp_path / "api_bank" / "train" / "lv3-train.json.gz", "wt") as fh:
        json.dump([{"instruction": "i", "input": "", "output": "o"}], fh)
    assert len(load_dataset("apibank-train", tmp_path)) == 1


def test_registry_abilities_are_known():
    from citi.data import ABILITIES

    assert {s.ability for s in DATASETS.values()} <= set(ABILITIES)
