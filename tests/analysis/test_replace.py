import json

import pytest
import torch

from citi.analysis.replace import components_for, parse_setting, replace_components
from citi.cli.main import main
from citi.errors import CitiError
from citi.models import load_model
from citi.train.loop import Trainer
from tests.helpers import small_config


def test_settings_and_component_choice():
    assert parse_setting("T-20") == ("T", 0.2)
    with pytest.raises(CitiError, match="--settings"):
        parse_setting("X-20")
    rank = {f"c{i}": i + 1 for i in range(10)}  # c0 most tool-important
    assert components_for("T-20", rank) == ["c0", "c1"]
    assert components_for("D-30", rank) == ["c7", "c8", "c9"]


def test_replace_into_a_bf16_base_keeps_the_tuned_float32_weights():
    tuned = load_model("tiny-llama", dtype="float32", device="cpu").model
    with torch.no_grad():  # an update far below one bf16 step of these weights
        tuned.model.layers[0].self_attn.q_proj.weight.add_(1e-6)
    base = load_model("tiny-llama", dtype="bfloat16", device="cpu").model
    replace_components(base, tuned, ["layers.0.self_attn.q_proj"])
    q = base.model.layers[0].self_attn.q_proj
    assert q.weight.dtype == torch.float32
    assert torch.equal(q.weight, tuned.model.layers[0].self_attn.q_proj.weight)
    x = torch.randn(2, q.in_features).to(torch.bfloat16)
    with torch.no_grad():
        assert torch.equal(q(x), torch.nn.functional.linear(x.float(), q.weight).to(x.dtype))
        base(input_ids=torch.tensor([[1, 2, 3]]))  # the bf16 rest of the model runs with it


def test_replace_copies_exactly_the_chosen_components(tmp_path, data_dir, selection_file):
    Trainer(
        small_config(data_dir, selection_file, method="ft", lr={"ft": 1e-3}), tmp_path / "ft"
    ).run()
    from citi.adapters import load_for_eval

    tuned = load_for_eval("tiny-llama", str(tmp_path / "ft")).model
    base = load_model("tiny-llama", device="cpu").model
    names = ["layers.0.self_attn.q_proj", "layers.3.mlp.down_proj"]
    replace_components(base, tuned, names)
    for name, (b, t) in {
        "q": (base.model.layers[0].self_attn.q_proj, tuned.model.layers[0].self_attn.q_proj),
        "down": (base.model.layers[3].mlp.down_proj, tuned.model.layers[3].mlp.down_proj),
    }.items():
        assert torch.equal(b.weight, t.weight), name
    untouched = load_model("tiny-llama", device="cpu").model
    assert torch.equal(
        base.model.layers[1].mlp.up_proj.weight, untouched.model.layers[1].mlp.up_proj.weight
    )
    assert not torch.equal(
        tuned.model.layers[1].mlp.up_proj.weight, untouched.model.layers[1].mlp.up_proj.weight
    )

    importance = {
        "rank_M": {
            n: i + 1
            for i, n in enumerate(
                [
                    f"layers.{layer}.{m}"
                    for layer in range(4)
                    for m in (
                        "self_attn.q_proj",
                        "self_attn.k_proj",
                        "self_attn.v_proj",
                        "self_attn.o_proj",
                        "mlp.gate_proj",
                        "mlp.up_proj",
                        "mlp.down_proj",
                    )
                ]
            )
        }
    }
    (tmp_path / "imp.json").write_text(json.dumps(importance))
    rc = main(
        [
            "analyze",
            "replace",
            "--model",
            "tiny-llama",
            "--tuned",
            str(tmp_path / "ft"),
            "--importance",
            str(tmp_path / "imp.json"),
            "--settings",
            "T-20,D-20",
            "--tasks",
            "retention-math",
            "--limit",
            "2",
            "--data-dir",
            str(data_dir),
            "--out",
            str(tmp_path / "rep"),
        ]
    )
    assert rc == 0
    res = json.loads((tmp_path / "rep" / "replace.json").read_text())["results"]
    assert list(res) == ["vanilla", "T-20", "D-20", "tuned"]
    nll = {k: v["retention-math"] for k, v in res.items()}
    assert nll["vanilla"] != nll["tuned"] and len(set(nll.values())) == 4

    summary = json.loads((tmp_path / "rep" / "replace.json").read_text())
    assert summary["precision"] in ("fp32", "bf16")  # auto, resolved for this machine
    for variant in res:
        ran = json.loads((tmp_path / "rep" / variant / "results.json").read_text())
        # The fully fine-tuned model keeps every weight in float32, whatever the precision.
        assert ran["precision"] == ("fp32" if variant == "tuned" else summary["precision"])


def test_replace_in_bf16_evaluates_the_frozen_weights_in_bf16(tmp_path, data_dir, selection_file):
    from citi.analysis.replace import run_replace
    from citi.evaluation.config import EvalConfig

    Trainer(
        small_config(data_dir, selection_file, method="ft", lr={"ft": 1e-3}), tmp_path / "ft"
    ).run()
    rank = {c: i + 1 for i, c in enumerate(["layers.0.self_attn.q_proj", "layers.3.mlp.up_proj"])}
    config = EvalConfig(
        model="tiny-llama",
        adapter=str(tmp_path / "ft"),
        tasks=["retention-math"],
        data_dir=str(data_dir),
        limit=2,
        precision="bf16",
        device="cpu",
    )
    summary = run_replace(config, {"rank_M": rank}, ["T-50"], tmp_path / "rep")
    assert summary["precision"] == "bf16"
    # The fully fine-tuned model has no frozen weight left: float32 throughout. A replaced
    # component keeps the tuned float32 weights inside the bf16 base.
    for variant, expected in (("vanilla", "bf16"), ("T-50", "bf16"), ("tuned", "fp32")):
        ran = json.loads((tmp_path / "rep" / variant / "results.json").read_text())
        assert ran["precision"] == expected, variant


def test_replace_refuses_a_run_that_trained_adapters_only(
    tmp_path, data_dir, selection_file, capsys
):
    lora = tmp_path / "lora"
    Trainer(small_config(data_dir, selection_file, method="lora"), lora).run()
    (tmp_path / "imp.json").write_text(json.dumps({"rank_M": {"layers.0.mlp.up_proj": 1}}))
    out = tmp_path / "rep"
    argv = ["analyze", "replace", "--model", "tiny-llama", "--tuned", str(lora)]
    argv += ["--importance", str(tmp_path / "imp.json"), "--tasks", "retention-math"]
    capsys.readouterr()
    assert main([*argv, "--data-dir", str(data_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(lora) in err and "lora run" in err
    assert "--method ft" in err and not out.exists()


def test_another_models_importance_is_one_line_before_any_evaluation(
    tmp_path, data_dir, selection_file, capsys
):
    config = small_config(data_dir, selection_file, method="ft", tool_limit=2, mix_per_source=1)
    Trainer(config, tmp_path / "ft").run()
    # tiny-phi3's components (fused qkv_proj, 2 layers), not tiny-llama's
    other = {"layers.0.self_attn.qkv_proj": 1, "layers.1.mlp.gate_up_proj": 2}
    for name, importance in (("other", {"rank_M": other}), ("strings", {"rank_M": {"a": "1"}})):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(importance))
        argv = ["analyze", "replace", "--model", "tiny-llama", "--tuned", str(tmp_path / "ft")]
        argv += ["--importance", str(path), "--tasks", "retention-math", "--limit", "1"]
        argv += ["--data-dir", str(data_dir), "--device", "cpu", "--out", str(tmp_path / "r")]
        rc = main(argv)
        err = capsys.readouterr().err
        (line,) = [x for x in err.splitlines() if x.startswith("citi: error:")]
        assert rc == 2 and "Traceback" not in err and "--importance" in line, err
        assert not (tmp_path / "r").exists()  # not even the vanilla evaluation ran
        if name == "other":
            assert "2 component(s) tiny-llama lacks, e.g. 'layers.0.self_attn.qkv_proj'" in line
    assert "rank_M must map" in line
