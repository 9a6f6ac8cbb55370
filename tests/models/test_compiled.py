import json

import pytest
import torch

from citi.cli.main import main
from citi.models import load_model
from citi.models.compiled import compile_in_place
from tests.helpers import small_config


@pytest.mark.slow  # inductor compiles for minutes on a loaded 2-core CPU
def test_compiled_model_keeps_its_keys_and_outputs():
    """--compile changes how the forward runs, not what it computes or how weights are saved."""
    model = load_model("tiny-llama", device="cpu").model.eval()
    keys = list(model.state_dict())
    ids = torch.tensor([[5, 6, 7, 8, 9], [10, 11, 12, 13, 14]])
    with torch.no_grad():
        eager = model(input_ids=ids).logits
        compile_in_place(model)
        compiled = model(input_ids=ids).logits
        longer = model(input_ids=torch.cat([ids, ids], 1)).logits  # another width: no error
    assert list(model.state_dict()) == keys
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
    assert longer.shape[1] == 10


def _record_compiles(monkeypatch, module):
    compiled = []
    monkeypatch.setattr(module, "compile_in_place", lambda m: compiled.append(type(m).__name__))
    return compiled


def test_train_compile_compiles_the_decoder_only_when_asked(
    tmp_path, data_dir, selection_file, monkeypatch
):
    import citi.train.loop as loop

    compiled = _record_compiles(monkeypatch, loop)
    for flag in (False, True):
        config = small_config(data_dir, selection_file, method="lora", compile=flag, max_steps=1)
        loop.Trainer(config, tmp_path / str(flag)).run()
    assert compiled == ["LlamaModel"]  # the decoder the loss runs, once, for the compiled run


def test_eval_compile_option_reaches_the_model(tmp_path, data_dir, monkeypatch):
    import citi.models.compiled as compiled_module

    compiled = _record_compiles(monkeypatch, compiled_module)
    for flag in ("--no-compile", "--compile"):
        out = tmp_path / flag
        args = ["eval", "--model", "tiny-llama", "--data-dir", str(data_dir)]
        args += ["--tasks", "apibank-l2", "--limit", "1", "--out", str(out), flag]
        assert main(args) == 0
        assert json.loads((out / "results.json").read_text())["tasks"]["apibank-l2"]
    assert compiled == ["LlamaForCausalLM"]
