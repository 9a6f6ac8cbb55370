"""Unreadable or mismatched adapter files: one error line naming the file, never a traceback."""

import json
import random
import shutil

import pytest

from citi.cli.main import main
from citi.train.loop import Trainer
from tests.helpers import small_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir, selection_file):
    runs = {}
    for method in ("lora", "citi"):
        out = tmp_path_factory.mktemp(method) / "run"
        Trainer(small_config(data_dir, selection_file, method=method, epochs={}), out).run()
        runs[method] = out
    return runs


def _config(final, **change):
    meta = json.loads((final / "adapter_config.json").read_text())
    meta.update(change)
    (final / "adapter_config.json").write_text(json.dumps(meta))


CORRUPTIONS = {
    "config is a list": (
        lambda f: (f / "adapter_config.json").write_text("[1]"),
        "expected an object",
    ),
    "config truncated": (
        lambda f: (f / "adapter_config.json").write_text('{"molora": {'),
        "malformed JSON",
    ),
    "unknown MOLoRA key": (
        lambda f: _config(f, molora={"rank": 8, "zzz": 1}, molora_components=[]),
        "unexpected keyword argument 'zzz'",
    ),
    "LoRA for a module the model lacks": (
        lambda f: _config(f, lora={"targets": ["model.layers.9.mlp.nope"], "rank": 4, "alpha": 4}),
        "which this model lacks",
    ),
    "weights truncated": (
        lambda f: (f / "adapter.safetensors").write_bytes(
            (f / "adapter.safetensors").read_bytes()[:100]
        ),
        "not a readable safetensors file",
    ),
    "weights random": (
        lambda f: (f / "adapter.safetensors").write_bytes(random.Random(0).randbytes(4000)),
        "not a readable safetensors file",
    ),
    "weights empty": (lambda f: (f / "adapter.safetensors").write_bytes(b""), "not a readable"),
    "absurd header": (
        lambda f: (f / "adapter.safetensors").write_bytes((2**62).to_bytes(8, "little") + b"{}"),
        "not a readable safetensors file",
    ),
}


@pytest.mark.parametrize("method", ["lora", "citi"])
@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_broken_adapter_is_one_error_line(tmp_path, data_dir, capsys, trained, method, name):
    corrupt, needle = CORRUPTIONS[name]
    run = tmp_path / "run"
    shutil.copytree(trained[method], run)
    corrupt(run / "final")
    out = tmp_path / "eval"
    argv = ["eval", "--model", "tiny-llama", "--data-dir", str(data_dir), "--precision", "fp32"]
    argv += ["--tasks", "retention-math", "--limit", "1", "--adapter", str(run), "--out", str(out)]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("citi: error:") and needle in err[0], err
    assert not (out / "results.json").exists()
