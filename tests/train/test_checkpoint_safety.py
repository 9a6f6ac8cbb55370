"""Resuming from a shared run directory runs no code from it."""

import pickle

import pytest
import torch

from citi.cli.main import main
from citi.train.loop import Trainer
from tests.helpers import small_config


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))  # creates the marker file when unpickled


def _interrupted_run(tmp_path, data_dir, selection_file):
    out = tmp_path / "run"
    config = small_config(data_dir, selection_file, method="lora", save_every=1, max_steps=2)
    assert Trainer(config, out).run()["paused_at_step"] == 2
    return out


def _resume(out, data_dir, selection_file):  # the interrupted run's own settings
    return main(
        [
            "train",
            "--method",
            "lora",
            "--model",
            "tiny-llama",
            "--data-dir",
            str(data_dir),
            "--mix-per-source",
            "3",
            "--max-length",
            "160",
            "--batch-size",
            "2",
            "--grad-accum",
            "2",
            "--seed",
            "7",
            "--save-every",
            "1",
            "--precision",
            "fp32",
            "--selection",
            str(selection_file),
            "--out",
            str(out),
            "--resume",
        ]
    )


@pytest.mark.parametrize("name", ["optimizer.pt", "scheduler.pt", "rng.safetensors"])
def test_pickle_payload_in_a_checkpoint_is_refused(
    tmp_path, data_dir, selection_file, capsys, name
):
    out = _interrupted_run(tmp_path, data_dir, selection_file)
    marker = tmp_path / "pwned"
    with open(out / "checkpoint" / name, "wb") as fh:
        pickle.dump(_Payload(marker), fh)
    capsys.readouterr()
    assert _resume(out, data_dir, selection_file) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("citi: error:") and name in err[0]
    assert not marker.exists()
    assert not (out / "final").exists()


def test_resume_cleans_stale_temporaries_and_finishes(tmp_path, data_dir, selection_file):
    out = _interrupted_run(tmp_path, data_dir, selection_file)
    stale = out / ".checkpoint.abc123.tmp"
    stale.mkdir()
    (stale / "trained.safetensors").write_bytes(b"half")
    assert _resume(out, data_dir, selection_file) == 0
    assert not stale.exists() and (out / "final" / "adapter.safetensors").is_file()


def test_no_pickle_loading_in_the_package():
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "src"
    text = "\n".join(p.read_text() for p in src.rglob("*.py"))
    # Catching pickle.UnpicklingError (a refused .bin) is fine; unpickling anything is not.
    banned = ("weights_only=False", "pickle.load", "pickle.Unpickler", "import dill", "joblib")
    assert [b for b in banned if b in text] == []
    assert torch.load  # the one loader left is weights_only=True (checkpoint._safe_load)


def test_load_checkpoint_without_progress_is_one_error(tmp_path, tiny_llama):
    # Found by mypy: without progress.json (its tensors present) it used to return None progress.
    from citi.errors import CitiError
    from citi.train.checkpoint import load_checkpoint

    with pytest.raises(CitiError, match="not a checkpoint"):
        load_checkpoint(tmp_path, tiny_llama.model)
