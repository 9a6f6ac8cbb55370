import json
from pathlib import Path

import pytest

from citi.cli.main import main
from citi.config import load_yaml_config
from citi.errors import ConfigError
from citi.importance import ImportanceConfig
from citi.importance.run import DEFAULT_ABILITIES, parse_abilities

ROOT = Path(__file__).resolve().parents[2]


def _run(out, data_dir, *extra):
    return main(
        [
            "importance",
            "--model",
            "tiny-llama",
            "--data-dir",
            str(data_dir),
            "--samples",
            "4",
            "--max-length",
            "160",
            "--out",
            str(out),
            *extra,
        ]
    )


def test_importance_cli_writes_results_and_resumes(tmp_path, data_dir, monkeypatch):
    out = tmp_path / "imp"
    assert _run(out, data_dir) == 0
    result = json.loads((out / "importance.json").read_text())
    selection = json.loads((out / "selection.json").read_text())
    assert set(result["abilities"]) == set(DEFAULT_ABILITIES)
    assert len(result["components"]) == 28
    assert sum(result["M"].values()) == pytest.approx(1.0)
    assert sum(result["C"].values()) == pytest.approx(4.0)  # four general abilities, each sums to 1
    assert result["abilities"]["tool"]["examples"] == 4
    assert len(selection["molora"]) == round(0.2 * 28) and len(selection["uco"]) == 3
    assert not set(selection["molora"]) & set(selection["uco"])
    assert (out / "config.yaml").is_file()

    # A second run with the same settings reuses every finished ability.
    import citi.importance.run as run_mod

    def boom(*a, **k):
        raise AssertionError("recomputed a finished ability")

    monkeypatch.setattr(run_mod, "_score_ability", boom)
    assert _run(out, data_dir, "--molora-ratio", "0.3") == 0
    again = json.loads((out / "selection.json").read_text())
    assert len(again["molora"]) == round(0.3 * 28)
    assert json.loads((out / "importance.json").read_text())["M"] == result["M"]


def test_missing_ability_data_fails_before_writing(tmp_path, data_dir, capsys):
    out = tmp_path / "imp"
    rc = _run(out, data_dir, "--abilities", "tool=apibank-train,math=metamath")
    assert rc == 2
    assert "metamath" in capsys.readouterr().err
    assert not out.exists()


def test_bad_options_name_the_option(tmp_path, data_dir, capsys):
    assert _run(tmp_path / "o", data_dir, "--molora-ratio", "1.5") == 2
    assert "--molora-ratio" in capsys.readouterr().err
    assert _run(tmp_path / "o", data_dir, "--abilities", "math=gsm8k,code=codealpaca") == 2
    assert "tool ability" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="expected ability=dataset"):
        parse_abilities("tool")


def test_select_and_jaccard_commands(tmp_path, data_dir):
    out = tmp_path / "imp"
    assert _run(out, data_dir) == 0
    assert (
        main(
            [
                "select",
                "--importance",
                str(out / "importance.json"),
                "--select",
                "random",
                "--seed",
                "3",
                "--out",
                str(tmp_path / "random.json"),
            ]
        )
        == 0
    )
    rnd = json.loads((tmp_path / "random.json").read_text())
    assert rnd["method"] == "random" and len(rnd["molora"]) == 6
    assert (
        main(
            [
                "analyze",
                "jaccard",
                "--importance",
                str(out / "importance.json"),
                "--out",
                str(tmp_path / "jac"),
            ]
        )
        == 0
    )
    jac = json.loads((tmp_path / "jac" / "jaccard.json").read_text())
    assert set(jac["groups"]) == {"high", "moderate", "low"}
    assert (tmp_path / "jac" / "jaccard.png").read_bytes()[:4] == b"\x89PNG"


def test_shipped_yaml_config_loads():
    config = load_yaml_config(ImportanceConfig, ROOT / "configs" / "importance.yaml")
    assert config == ImportanceConfig()
    with pytest.raises(ConfigError, match="unknown key"):
        load_yaml_config(ImportanceConfig, ROOT / "configs" / "importance.yaml", samplez=3)


@pytest.mark.parametrize(
    "corrupt, needle",
    [
        (
            lambda r: r["scores"]["taylor"].update({k: "1.0" for k in r["scores"]["taylor"]}),
            "'1.0'",
        ),
        (lambda r: r["scores"]["token-abs"].popitem(), "do not list"),
        (lambda r: r["scores"].update(taylor=[1, 2]), "do not list"),
        (lambda r: r.update(scores="none"), "do not list"),
        (lambda r: r["scores"]["taylor"].update({next(iter(r["scores"]["taylor"])): -1}), "-1"),
    ],
)
def test_malformed_partial_result_is_one_error_line(tmp_path, data_dir, capsys, corrupt, needle):
    out = tmp_path / "imp"
    assert _run(out, data_dir) == 0
    partial = out / "partial" / "math.json"
    saved = json.loads(partial.read_text())
    corrupt(saved["result"])
    partial.write_text(json.dumps(saved))
    capsys.readouterr()
    assert _run(out, data_dir) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("citi: error:") and "math.json" in err[0]
    assert needle in err[0]


def test_partial_result_of_other_settings_is_rescored(tmp_path, data_dir):
    out = tmp_path / "imp"
    assert _run(out, data_dir) == 0
    partial = out / "partial" / "math.json"
    partial.write_text(json.dumps({"key": "other settings", "result": "anything"}))
    assert _run(out, data_dir) == 0
    assert json.loads(partial.read_text())["key"] != "other settings"


@pytest.mark.parametrize(
    "content, argv, needle",
    [
        ({"M": {"a": float("nan"), "b": 1.0}, "C": {"a": 1.0, "b": 1.0}}, "select", "is nan"),
        ({"M": {"a": "x", "b": 1.0}, "C": {"a": 1.0, "b": 1.0}}, "select", "is 'x'"),
        ({"M": {"a": 1.0, "b": 1.0}, "C": {"a": 1.0}}, "select", "another set of components"),
        ({"M": [1, 2], "C": {}}, "select", "not a map"),
        ({"abilities": {"tool": {"normalized": {"a": 1.0}}}}, "jaccard", "2+ abilities"),
        (
            {"abilities": {"t": {"normalized": {"a": 1.0}}, "m": {"normalized": {"a": -1}}}},
            "jaccard",
            "-1",
        ),
    ],
)
def test_importance_files_are_checked_before_use(tmp_path, capsys, content, argv, needle):
    path = tmp_path / "importance.json"
    path.write_text(json.dumps(content))
    out = tmp_path / "out.json"
    if argv == "select":
        rc = main(["select", "--importance", str(path), "--out", str(out)])
    else:
        rc = main(["analyze", "jaccard", "--importance", str(path), "--out", str(tmp_path / "j")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and needle in err[0] and "importance.json" in err[0]
    assert not out.exists() and not (tmp_path / "j").exists()
