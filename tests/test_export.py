"""``citi export``: the exported folder reproduces citi's own model through transformers and PEFT
alone, for CITI (MOLoRA + UCO), LoRA and FT runs."""

import json
import os
import shutil

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

import citi  # noqa: F401  (registers MOLoRA with PEFT)
from citi.adapters import load_adapter
from citi.cli.main import main
from citi.models import load_model
from citi.train.loop import Trainer
from tests.helpers import small_config

IDS = torch.tensor([[5, 6, 7, 8, 9, 10, 11], [12, 13, 14, 15, 16, 17, 18]])


def _logits(model):
    with torch.no_grad():
        return model.eval()(IDS).logits


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir, selection_file):
    out = {}
    for method in ("citi", "lora", "ft"):
        run = tmp_path_factory.mktemp(method) / "run"
        # lr high enough that every trained tensor moves away from its initial value
        lr = {"citi": {"mi": 1e-2, "uco": 1e-3}, "lora": {"lora": 1e-2}, "ft": {"ft": 1e-3}}
        config = small_config(data_dir, selection_file, method=method, lr=lr[method])
        Trainer(config, run).run()
        out[method] = run
    return out


def _citi_logits(run):
    model = load_model("tiny-llama", device="cpu").model
    load_adapter(model, run / "final")
    return _logits(model)


@pytest.mark.parametrize("method", ["citi", "lora", "ft"])
def test_export_reproduces_citis_logits_with_transformers_and_peft_alone(runs, tmp_path, method):
    out = tmp_path / "export"
    assert main(["export", str(runs[method]), "--out", str(out)]) == 0
    expected = _citi_logits(runs[method])
    assert not torch.equal(expected, _logits(load_model("tiny-llama", device="cpu").model))

    base = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    if method == "ft":
        assert not (out / "adapter").exists()
        torch.testing.assert_close(_logits(base), expected, rtol=0, atol=0)
        return
    adapter_config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["peft_type"] == ("MOLORA" if method == "citi" else "LORA")
    with_peft = PeftModel.from_pretrained(base, out / "adapter")
    torch.testing.assert_close(_logits(with_peft), expected, rtol=0, atol=0)

    with_hf = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    with_hf.load_adapter(str(out / "adapter"))
    torch.testing.assert_close(_logits(with_hf), expected, rtol=0, atol=0)


def test_citi_export_writes_uco_weights_into_the_base_and_a_model_card(runs, tmp_path):
    out = tmp_path / "export"
    assert main(["export", str(runs["citi"]), "--out", str(out)]) == 0
    base = load_model("tiny-llama", device="cpu").model.state_dict()
    exported = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).state_dict()
    uco = "model.layers.2.self_attn.v_proj.weight"  # a UCO component of selection_file
    assert not torch.equal(exported[uco], base[uco])  # trained weights written in
    untouched = "model.layers.1.self_attn.q_proj.weight"
    assert torch.equal(exported[untouched], base[untouched])
    card = (out / "README.md").read_text()
    assert "library_name: peft" in card and "MOLoRA" in card
    assert "layers.0.self_attn.q_proj" in card and "layers.2.self_attn.v_proj" in card
    assert "import citi" in card
    assert (out / "citi_config.yaml").is_file() and (out / "citi_adapter_config.json").is_file()
    assert (out / "tokenizer_config.json").is_file() or (out / "tokenizer.json").is_file()


def test_export_puts_eval_results_in_the_card_and_refuses_bad_input(runs, tmp_path, capsys):
    results = tmp_path / "results.json"
    task = {"primary": "accuracy", "metrics": {"accuracy": 0.25}, "limit": 8}
    results.write_text(json.dumps({"tasks": {"gsm8k": task}}))
    out = tmp_path / "export"
    assert main(["export", str(runs["lora"]), "--out", str(out), "--results", str(results)]) == 0
    assert "| gsm8k | accuracy | 0.25 | 8 |" in (out / "README.md").read_text()

    capsys.readouterr()
    bad = tmp_path / "bad.json"
    bad.write_text("[1]")
    empty = tmp_path / "empty"
    empty.mkdir()
    for argv, message in (
        ([str(empty), "--out", str(tmp_path / "x")], "holds no trained adapter"),
        ([str(runs["lora"]), "--out", str(tmp_path / "y"), "--results", str(bad)], "not a citi"),
    ):
        assert main(["export", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and message in err
        assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def _tree(root):
    """Every file under ``root`` with its bytes: what "left as it was" compares."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _refused(argv, capsys, *words):
    capsys.readouterr()
    assert main(["export", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and all(w in err for w in words), err
    return err


def test_export_refuses_a_non_empty_out_unless_overwrite_replaces_it(runs, tmp_path, capsys):
    out = tmp_path / "export"
    (out / "keep").mkdir(parents=True)
    (out / "keep" / "notes.txt").write_text("mine\n")
    _refused([str(runs["lora"]), "--out", str(out)], capsys, str(out), "--overwrite")
    assert _tree(out) == {"keep/notes.txt": b"mine\n"}

    assert main(["export", str(runs["lora"]), "--out", str(out), "--overwrite"]) == 0
    assert not (out / "keep").exists() and (out / "adapter" / "adapter_config.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", str(runs["lora"]), "--out", str(empty)]) == 0  # empty: fine


@pytest.mark.parametrize("where", ["run", "final", "inside", "parent"])
def test_export_never_writes_onto_into_or_around_the_run(runs, tmp_path, capsys, where):
    run = tmp_path / "runs" / "lora"
    shutil.copytree(runs["lora"], run)
    before = _tree(tmp_path)
    out = {
        "run": run,
        "final": run / "final",
        "inside": run / "export",
        "parent": tmp_path / "runs",
    }[where]
    for overwrite in ([], ["--overwrite"]):
        _refused([str(run), "--out", str(out), *overwrite], capsys, "run directory", str(out))
        assert _tree(tmp_path) == before
    assert not (run / "export").exists()


@pytest.mark.parametrize("name", ["config.yaml", "summary.json", "final/adapter_config.json"])
def test_export_refuses_a_run_file_that_links_outside_the_run(runs, tmp_path, capsys, name):
    run = tmp_path / "run"
    shutil.copytree(runs["lora"], run)
    token = tmp_path / "token"
    token.write_text("hf_secret\n")
    (run / name).unlink()
    (run / name).symlink_to(token)
    out = tmp_path / "export"
    _refused([str(run), "--out", str(out)], capsys, str(run / name), "outside")
    assert not out.exists()


def test_export_refuses_a_fifo_in_place_of_a_run_file(runs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(runs["lora"], run)
    (run / "config.yaml").unlink()
    os.mkfifo(run / "config.yaml")  # reading it would block for ever
    _refused([str(run), "--out", str(tmp_path / "x")], capsys, "not a regular file")
    assert not (tmp_path / "x").exists()


def test_export_follows_a_link_that_stays_inside_the_run(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs["lora"], run)
    (run / "config.saved.yaml").write_bytes((run / "config.yaml").read_bytes())
    (run / "config.yaml").unlink()
    (run / "config.yaml").symlink_to("config.saved.yaml")
    assert main(["export", str(run), "--out", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "citi_config.yaml").read_bytes() == (
        run / "config.saved.yaml"
    ).read_bytes()


def _set(path, *keys):
    """An edit of a JSON file: ``keys[:-1]`` lead to the field, ``keys[-1]`` is its new value."""

    def edit(run):
        data = json.loads((run / path).read_text())
        if len(keys) == 1:
            data = keys[0]
        else:
            node = data
            for k in keys[:-2]:
                node = node[k]
            node[keys[-2]] = keys[-1]
        (run / path).write_text(json.dumps(data))

    return edit


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (_set("final/adapter_config.json", "base_model", 42), "'base_model'"),
        (_set("final/adapter_config.json", "lora", "rank", float("nan")), "'lora.rank'"),
        (_set("final/adapter_config.json", "lora", "rank", 2.5), "'lora.rank'"),
        (_set("final/adapter_config.json", "lora", "alpha", "16"), "'lora.alpha'"),
        (_set("final/adapter_config.json", "uco_components", [1, 2]), "'uco_components'"),
        (_set("final/adapter_config.json", ["a", "list"]), "expected an object"),
        (_set("summary.json", ["a", "list"]), "expected an object, got list"),
        (_set("summary.json", "eval", [{"after": "lora", "loss": "low"}]), "'eval'[0]"),
        (_set("summary.json", "eval", [{"after": "lora", "loss": {"x": "1"}}]), "'eval'[0]"),
        (_set("summary.json", "stage_seconds", [1.0]), "'stage_seconds'"),
        (_set("summary.json", "global_steps", "6"), "'global_steps'"),
    ],
)
def test_wrongly_typed_run_files_are_one_line(runs, tmp_path, capsys, edit, needle):
    run = tmp_path / "run"
    shutil.copytree(runs["lora"], run)
    edit(run)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["export", str(run), "--out", str(tmp_path / "export")]) == 2
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if x.startswith("citi: error:")]
    assert needle in line and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no export, no temporaries
