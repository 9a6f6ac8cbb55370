"""The output lock: a second command into a held --out fails at once, a dead holder's is taken."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from citi.cli.main import main
from citi.output_lock import lock_file_for, output_lock

SRC = str(Path(__file__).resolve().parents[1] / "src")
HOLDER = (
    "import sys\n"
    "from citi.output_lock import output_lock\n"
    "with output_lock(sys.argv[1]):\n"
    "    print('held', flush=True)\n"
    "    sys.stdin.read()\n"
)


def _importance(tmp_path) -> Path:
    names = [f"layers.0.c{i}" for i in range(10)]
    path = tmp_path / "importance.json"
    path.write_text(
        json.dumps(
            {"M": {n: float(i) for i, n in enumerate(names)}, "C": dict.fromkeys(names, 1.0)}
        )
    )
    return path


def _select(tmp_path, out) -> list[str]:
    return ["select", "--importance", str(_importance(tmp_path)), "--out", str(out)]


def _hold(path):
    """A separate process holding the lock of ``path`` until its stdin closes."""
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_command_into_a_held_out_fails_at_once_naming_dir_and_pid(tmp_path, capsys):
    out = tmp_path / "sel.json"
    out.write_text("old selection\n")
    holder = _hold(out)
    try:
        assert main(_select(tmp_path, out)) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and str(out) in err and f"pid {holder.pid}" in err
        assert out.read_text() == "old selection\n"  # left as it was
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert main(_select(tmp_path, out)) == 0  # released when its holder ends
    assert "molora" in json.loads(out.read_text())
    assert not lock_file_for(out).exists()  # removed on release


def test_the_stale_lock_of_a_killed_process_is_taken_over(tmp_path):
    out = tmp_path / "run"
    holder = _hold(out)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    assert lock_file_for(out).read_text().strip() == str(holder.pid)  # left behind, dead pid
    with output_lock(out):
        assert lock_file_for(out).read_text().strip() == str(os.getpid())


def test_train_into_a_held_out_fails_before_any_work(tmp_path, capsys):
    out = tmp_path / "run"
    with output_lock(out):
        code = main(["train", "--method", "lora", "--model", "tiny-llama", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(out) in err and f"pid {os.getpid()}" in err
    assert not out.exists()


def test_a_failed_command_leaves_no_directories_behind(tmp_path, capsys):
    out = tmp_path / "a" / "b" / "sel.json"
    argv = _select(tmp_path, out)
    argv[argv.index("--importance") + 1] = str(tmp_path / "missing.json")
    assert main(argv) == 2
    assert "missing.json" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("rank", ["1", "3"])
def test_the_other_processes_of_a_distributed_run_share_rank_0s_lock(tmp_path, monkeypatch, rank):
    out = tmp_path / "sel.json"
    monkeypatch.setenv("RANK", rank)
    with output_lock(out):  # rank 0 of the same run holds it
        assert main(_select(tmp_path, out)) == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--method", "lora", "--model", "tiny-llama"],
        ["importance", "--model", "tiny-llama"],
        ["select", "--importance", "imp.json"],
        ["eval", "--model", "tiny-llama", "--tasks", "triviaqa"],
        ["export", "run"],
        ["reproduce", "--preset", "tiny"],
        ["analyze", "jaccard", "--importance", "imp.json"],
        ["analyze", "replace", "--tuned", "run", "--importance", "imp.json"],
        ["analyze", "icc", "--tuned", "run"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_every_command_that_writes_an_out_takes_its_lock(tmp_path, capsys, argv):
    out = tmp_path / "out"
    with output_lock(out):
        assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "in use by another citi command" in err
    assert f"pid {os.getpid()}" in err and not out.exists()
