import json

import pytest
import torch

from citi.analysis.icc import final_inputs, icc_similarities, mean_hidden
from citi.cli.main import main
from citi.data import load_dataset
from citi.errors import CitiError
from citi.train.loop import Trainer
from tests.helpers import small_config


def test_final_inputs_are_prompt_plus_an_answer_prefix(tiny_llama, data_dir):
    ex = load_dataset("gsm8k", data_dir)
    a = final_inputs(tiny_llama.tokenizer, ex, 512, seed=1)
    assert a == final_inputs(tiny_llama.tokenizer, ex, 512, seed=1)
    prompt = tiny_llama.tokenizer(
        tiny_llama.tokenizer.apply_chat_template(
            ex[0].prompt_messages, tokenize=False, add_generation_prompt=True
        ),
        add_special_tokens=False,
    )["input_ids"]
    assert a[0][: len(prompt)] == prompt


def test_mean_hidden_reads_the_layer_inputs_and_ignores_padding(tiny_llama, data_dir):
    model = tiny_llama.model
    inputs = final_inputs(tiny_llama.tokenizer, load_dataset("gsm8k", data_dir)[:3], 512, 0)
    h = mean_hidden(model, inputs, tiny_llama.tokenizer.pad_token_id, batch_size=3)
    one = mean_hidden(model, inputs, tiny_llama.tokenizer.pad_token_id, batch_size=1)
    torch.testing.assert_close(h, one, rtol=1e-4, atol=1e-5)
    # By hand for the first input: attention input = input_layernorm(residual stream).
    out = model(input_ids=torch.tensor([inputs[0]]), output_hidden_states=True)
    layer0 = model.model.layers[0]
    expected = layer0.input_layernorm(out.hidden_states[0])[0, -1]
    single = mean_hidden(model, inputs[:1], 0)
    torch.testing.assert_close(single[0, 0], expected, rtol=1e-4, atol=1e-5)


def test_similarities_by_hand():
    icc = {
        "tool": torch.tensor([[[1.0, 0.0], [1.0, 0.0]]]),
        "math": torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]),
    }
    sims = icc_similarities(icc)
    assert sims == {"math": {"attn": [1.0], "ffn": [0.0]}}


def test_icc_cli(tmp_path, data_dir, selection_file):
    Trainer(
        small_config(data_dir, selection_file, method="ft", lr={"ft": 1e-3}), tmp_path / "ft"
    ).run()
    rc = main(
        [
            "analyze",
            "icc",
            "--model",
            "tiny-llama",
            "--tuned",
            str(tmp_path / "ft"),
            "--reference",
            str(tmp_path / "ft"),
            "--abilities",
            "tool=apibank-train,math=gsm8k,code=codealpaca",
            "--samples",
            "3",
            "--data-dir",
            str(data_dir),
            "--out",
            str(tmp_path / "icc"),
        ]
    )
    assert rc == 0
    result = json.loads((tmp_path / "icc" / "icc.json").read_text())
    assert set(result["tuned"]) == {"math", "code"}
    assert len(result["tuned"]["math"]["ffn"]) == 4
    assert all(-1 <= v <= 1 for v in result["tuned"]["code"]["attn"])
    assert result["reference"] == result["tuned"]  # the same run as reference
    assert (tmp_path / "icc" / "icc.png").read_bytes()[:4] == b"\x89PNG"


def test_mean_hidden_skips_the_lm_head(tiny_llama, data_dir):
    model = tiny_llama.model
    inputs = final_inputs(tiny_llama.tokenizer, load_dataset("gsm8k", data_dir)[:2], 512, 0)
    calls = []
    handle = model.lm_head.register_forward_hook(lambda *_: calls.append(1))
    try:
        h = mean_hidden(model, inputs, tiny_llama.tokenizer.pad_token_id)
    finally:
        handle.remove()
    assert calls == [] and h.shape == (4, 2, model.config.hidden_size)


def test_icc_of_a_full_fine_tune_in_bf16_is_taken_in_float32(tmp_path, data_dir, selection_file):
    from citi.analysis.icc import run_icc

    Trainer(
        small_config(data_dir, selection_file, method="ft", lr={"ft": 1e-3}), tmp_path / "ft"
    ).run()
    abilities = {"tool": "apibank-train", "math": "gsm8k"}
    result = {
        p: run_icc(
            "tiny-llama",
            str(tmp_path / "ft"),
            abilities,
            tmp_path / p,
            data_dir=data_dir,
            samples=3,
            precision=p,
            device="cpu",
        )
        for p in ("fp32", "bf16")
    }
    assert result["bf16"]["settings"]["precision"] == "bf16"
    assert result["fp32"]["settings"]["precision"] == "fp32"
    # A fully fine-tuned run keeps float32 (its updates would round away in bf16), and its
    # shift is taken against the float32 base: the same numbers as in fp32.
    assert result["bf16"]["settings"]["ran_in"] == {"tuned": "fp32"}
    sims = {p: torch.tensor(r["tuned"]["math"]["ffn"]) for p, r in result.items()}
    assert torch.isfinite(sims["bf16"]).all()
    assert torch.equal(sims["bf16"], sims["fp32"])


@pytest.mark.parametrize("max_length", ["0", "-5"])
def test_icc_max_length_below_one_is_one_line(tmp_path, capsys, max_length):
    argv = ["analyze", "icc", "--model", "tiny-llama", "--tuned", str(tmp_path / "run")]
    argv += ["--max-length", max_length, "--out", str(tmp_path / "icc")]
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("citi: error: --max-length: must be >= 1 token"), line
    assert list(tmp_path.iterdir()) == []


def test_mean_hidden_of_no_inputs_is_one_error(tiny_llama):
    # Found by mypy: no inputs used to end in a TypeError (None / 0).
    with pytest.raises(CitiError, match="at least one input"):
        mean_hidden(tiny_llama.model, [], 0)
