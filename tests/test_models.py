from pathlib import Path

import pytest
import torch

from citi.errors import CitiError
from citi.models import load_model
from citi.models.loader import resolve_dtype


def test_tiny_models_are_seeded_and_identical(tiny_llama):
    again = load_model("tiny-llama", device="cpu")
    for a, b in zip(tiny_llama.model.parameters(), again.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_tiny_model_forward_and_tokenizer(tiny_phi3):
    tok = tiny_phi3.tokenizer
    ids = tok("hello", return_tensors="pt")["input_ids"]
    assert tok.decode(ids[0]) == "hello"
    logits = tiny_phi3.model(input_ids=ids).logits
    assert logits.shape == (1, ids.shape[1], len(tok))


def test_dtype_defaults_and_errors():
    assert resolve_dtype(None, "cpu") == torch.float32
    assert resolve_dtype("auto", "cuda:0") == torch.bfloat16
    assert resolve_dtype("float16", "cpu") == torch.float16
    with pytest.raises(CitiError, match="--dtype"):
        resolve_dtype("int3", "cpu")


def test_bad_model_specs_are_clear_errors(tmp_path):
    with pytest.raises(CitiError, match="GGUF file not found"):
        load_model(str(tmp_path / "missing.gguf"))
    with pytest.raises(CitiError, match="without config.json"):
        load_model(str(tmp_path))
    with pytest.raises(CitiError, match="does not exist"):
        load_model("./no/such/dir")


def test_local_directory_roundtrip(tiny_llama, tmp_path):
    tiny_llama.model.save_pretrained(tmp_path)
    tiny_llama.tokenizer.save_pretrained(tmp_path)
    loaded = load_model(str(tmp_path), device="cpu")
    ids = torch.tensor([[5, 6, 7]])
    torch.testing.assert_close(loaded.model(ids).logits, tiny_llama.model(ids).logits)


@pytest.mark.slow
def test_smollm2_through_the_cache(tmp_path, monkeypatch):
    from citi.components import list_components

    monkeypatch.setenv("CITI_CACHE", str(tmp_path))
    first = load_model("smollm2-135m-instruct", device="cpu")
    config = Path(first.source) / "config.json"
    stamp = config.stat().st_mtime_ns
    loaded = load_model("smollm2-135m-instruct", device="cpu")
    assert loaded.source == first.source
    assert config.stat().st_mtime_ns == stamp  # read from the cache, not converted again
    assert not list(Path(first.source).parent.glob(".*.tmp"))  # no conversion leftovers
    assert len(list_components(loaded.model)) == 210
    tok = loaded.tokenizer
    enc = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = loaded.model.generate(**enc, max_new_tokens=16, do_sample=False)
    answer = tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


class _Payload:
    """Unpickling it would create a file: the proof that a pickle ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_model_whose_pickle_weights_hold_code_is_refused_in_one_line(
    tiny_llama, tmp_path, data_dir, capsys
):
    from citi.cli.main import main

    model_dir, marker = tmp_path / "model", tmp_path / "ran"
    tiny_llama.model.save_pretrained(model_dir)
    tiny_llama.tokenizer.save_pretrained(model_dir)
    state = dict(tiny_llama.model.state_dict())
    state["payload"] = _Payload(marker)
    torch.save(state, model_dir / "pytorch_model.bin")
    (model_dir / "model.safetensors").unlink()
    out = tmp_path / "ev"
    argv = ["eval", "--model", str(model_dir), "--tasks", "triviaqa", "--limit", "1"]
    capsys.readouterr()
    assert main([*argv, "--data-dir", str(data_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(model_dir) in err and "pickle" in err
    assert not marker.exists() and not out.exists()
