"""Writes the machine refuses (a full disk, a name too long): one error line naming the file,
exit 2, no temporaries, and every output either whole or absent."""

import errno
import json
import pathlib

import pytest
import torch
import yaml

from citi.cli.main import main
from citi.io import atomic_path, check_output, os_error_behind, write_json_atomic
from citi.train.metrics_log import append_line


def _tree(root: pathlib.Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _no_temporaries(root: pathlib.Path) -> None:
    left = [p for p in _tree(root) if p.rsplit("/", 1)[-1].endswith((".tmp", ".old"))]
    assert not left, left


def _one_line(capsys, rc, *needles):
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    (line,) = [x for x in err.splitlines() if x.startswith("citi: error:")]  # progress bars aside
    for needle in needles:
        assert needle in line, line
    return line


@pytest.fixture
def full_disk(monkeypatch):
    """``full_disk(name)``: writing a file called ``name`` stores half its text, then fails the
    way a full disk does (OSError ENOSPC naming the file being written)."""
    real = pathlib.Path.write_text

    def arm(name):
        def write_text(self, data, *args, **kwargs):
            if self.name == name:
                real(self, data[: len(data) // 2], *args, **kwargs)
                raise OSError(errno.ENOSPC, "No space left on device", str(self))
            return real(self, data, *args, **kwargs)

        monkeypatch.setattr(pathlib.Path, "write_text", write_text)

    return arm


# -- the mechanism ------------------------------------------------------------------------------


def test_atomic_write_on_a_full_disk_names_the_output_and_leaves_the_old_file(tmp_path, full_disk):
    target = tmp_path / "results.json"
    write_json_atomic(target, {"old": True})
    full_disk("results.json")
    with pytest.raises(OSError) as caught:
        write_json_atomic(target, {"new": True})
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert json.loads(target.read_text()) == {"old": True}
    assert _tree(tmp_path) == {"results.json"}


@pytest.mark.parametrize(
    "failure",
    [
        # what safetensors' Rust writer raises on a full disk
        lambda: RuntimeError("Error while serializing: I/O error: No space left (os error 28)"),
        # torch.save into a Python file: a RuntimeError raised while the OSError was handled
        lambda: _raised_during(OSError(errno.ENOSPC, "No space left on device")),
    ],
)
def test_writer_libraries_failures_are_traced_to_the_disk(tmp_path, failure):
    out = tmp_path / "final"
    with pytest.raises(OSError) as caught, atomic_path(out) as tmp:
        tmp.mkdir()
        (tmp / "adapter.safetensors").write_bytes(b"half")
        raise failure()
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(out)
    assert _tree(tmp_path) == set()


def _raised_during(os_error):
    try:
        raise os_error
    except OSError:
        try:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")
        except RuntimeError as err:
            return err


def test_torch_save_into_a_file_object_keeps_the_disk_error(tmp_path):
    class FullFile:
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self):
            pass

    with pytest.raises(Exception) as caught:
        torch.save({"w": torch.zeros(1000)}, FullFile())
    assert os_error_behind(caught.value).errno == errno.ENOSPC


def test_bugs_are_not_mistaken_for_disk_errors():
    assert os_error_behind(ValueError("rank must be > 0")) is None
    assert os_error_behind(FileNotFoundError(errno.ENOENT, "gone", "x")) is None


def test_a_log_line_the_disk_refuses_is_cut_back_off(tmp_path, monkeypatch):
    log = tmp_path / "metrics.jsonl"
    append_line(log, json.dumps({"step": 1}))

    class HalfThenFull:  # a raw file whose disk fills up 4 bytes into the write
        def __init__(self, *args, **kwargs):
            self.raw = open(*args, **kwargs)  # noqa: SIM115

        def __getattr__(self, name):
            return getattr(self.raw, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.raw.close()

        def write(self, data):
            self.raw.write(data[:4])
            raise OSError(errno.ENOSPC, "No space left on device")

    import citi.train.metrics_log

    monkeypatch.setattr(citi.train.metrics_log, "open", HalfThenFull, raising=False)
    with pytest.raises(OSError):
        append_line(log, json.dumps({"step": 2}))
    monkeypatch.undo()
    assert log.read_text() == '{"step": 1}\n'


def test_a_name_at_the_limit_still_gets_its_temporary(tmp_path):
    name = "y" * 250 + ".json"  # 255 bytes: legal, but ".NAME.xxxxxxxx.tmp" would not be
    write_json_atomic(tmp_path / name, {"ok": 1})
    assert _tree(tmp_path) == {name}


def test_over_long_names_are_refused_before_any_work(tmp_path):
    from citi.errors import CitiError

    with pytest.raises(CitiError, match=r"--out: the name x{24}\.\.\. is 300 bytes"):
        check_output(tmp_path / "a" / ("x" * 300) / "b")
    assert not (tmp_path / "a").exists()


# -- each command --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--model", "tiny-llama", "--tasks", "triviaqa", "--device", "cpu"],
        ["train", "--method", "lora", "--model", "tiny-llama", "--device", "cpu"],
        ["select", "--importance", "IMPORTANCE"],
    ],
    ids=["eval", "train", "select"],
)
def test_over_long_out_is_one_line(tmp_path, capsys, argv):
    (tmp_path / "importance.json").write_text("{}")
    argv = [a.replace("IMPORTANCE", str(tmp_path / "importance.json")) for a in argv]
    before = _tree(tmp_path)
    rc = main([*argv, "--out", str(tmp_path / "runs" / ("x" * 300))])
    _one_line(capsys, rc, "--out", "300 bytes")
    assert _tree(tmp_path) == before


def _train_argv(data_dir, method, out):
    argv = ["train", "--method", method, "--model", "tiny-llama", "--data-dir", str(data_dir)]
    argv += ["--tool-limit", "4", "--mix-per-source", "1", "--max-length", "96"]
    argv += ["--batch-size", "2", "--grad-accum", "1", "--precision", "fp32", "--device", "cpu"]
    return [*argv, "--out", str(out)]


@pytest.mark.parametrize("method", ["lora", "ft"])
def test_train_on_a_full_disk(tmp_path, data_dir, capsys, full_disk, method):
    out = tmp_path / "run"
    full_disk("adapter_config.json")  # the final adapter, after every step has run
    rc = main(_train_argv(data_dir, method, out))
    _one_line(capsys, rc, str(out / "final"), "no space left")
    assert not (out / "final").exists() and not (out / "summary.json").exists()
    _no_temporaries(tmp_path)


def test_importance_on_a_full_disk(tmp_path, data_dir, capsys, full_disk):
    out = tmp_path / "imp"
    full_disk("importance.json")
    argv = ["importance", "--model", "tiny-llama", "--data-dir", str(data_dir), "--device", "cpu"]
    argv += ["--abilities", "tool=apibank-train,math=gsm8k", "--samples", "2"]
    argv += ["--batch-size", "2", "--max-length", "64", "--out", str(out)]
    _one_line(capsys, main(argv), str(out / "importance.json"), "no space left")
    assert not (out / "importance.json").exists() and not (out / "selection.json").exists()
    _no_temporaries(tmp_path)


def test_eval_on_a_full_disk(tmp_path, data_dir, capsys, full_disk):
    out = tmp_path / "eval"
    full_disk("results.json")
    argv = ["eval", "--model", "tiny-llama", "--data-dir", str(data_dir), "--device", "cpu"]
    argv += ["--tasks", "triviaqa", "--limit", "2", "--out", str(out)]
    _one_line(capsys, main(argv), str(out / "results.json"), "no space left")
    assert not (out / "results.json").exists()
    _no_temporaries(tmp_path)


def test_export_on_a_full_disk(tmp_path, data_dir, capsys, full_disk):
    run = tmp_path / "run"
    assert main(_train_argv(data_dir, "lora", run)) == 0
    before = _tree(tmp_path)
    full_disk("README.md")  # the model card, the export's last file
    out = tmp_path / "export"
    _one_line(capsys, main(["export", str(run), "--out", str(out)]), str(out), "no space left")
    assert _tree(tmp_path) == before


def test_reproduce_on_a_full_disk(tmp_path, data_dir, capsys, full_disk):
    preset = {
        "name": "full",
        "model": "tiny-llama",
        "data_dir": str(data_dir),
        "methods": ["lora"],
        "analyses": [],
        "importance": {"samples": 2, "batch_size": 2, "max_length": 64},
        "train": {"tool_limit": 2, "mix_per_source": 1, "max_length": 64, "batch_size": 2},
        "eval": {"tasks": ["triviaqa"], "limit": 1, "batch_size": 2},
    }
    path = tmp_path / "full.yaml"
    path.write_text(yaml.safe_dump(preset))
    out = tmp_path / "out"
    full_disk("importance.json")
    rc = main(["reproduce", "--preset", str(path), "--out", str(out)])
    _one_line(capsys, rc, "importance.json", "no space left")
    assert not list(out.rglob("importance.json")) and not (out / "report.md").exists()
    steps = out / "steps.json"
    assert not steps.exists() or "importance" not in json.loads(steps.read_text())
    _no_temporaries(tmp_path)


def test_figures_are_written_as_palette_pngs_that_look_the_same(tmp_path):
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    from citi.io import write_figure_atomic

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1, 2], [1, 0, 2], label="a")
    ax.imshow(np.linspace(0, 1, 100).reshape(10, 10), extent=(0, 2, 0, 2), cmap="Blues")
    ax.legend()
    rgba = io.BytesIO()
    fig.savefig(rgba, format="png", dpi=100)
    write_figure_atomic(tmp_path / "f.png", fig, dpi=100)
    plt.close(fig)
    written, original = Image.open(tmp_path / "f.png"), Image.open(rgba)
    assert written.mode == "P" and written.size == original.size
    diff = np.abs(
        np.asarray(written.convert("RGB"), dtype=int) - np.asarray(original.convert("RGB"), int)
    )
    assert diff.mean() < 1.0 and np.percentile(diff, 99.9) <= 32  # out of 255
    assert (tmp_path / "f.png").stat().st_size < len(rgba.getvalue())
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]  # no temporary left
