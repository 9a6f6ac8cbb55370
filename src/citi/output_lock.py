"""One writer per output: ``output_lock(--out)`` fails at once when another process holds it.

The lock is an ``fcntl.flock`` on a small file beside the output (``.NAME.lock`` in its parent
directory, so the output itself can still be replaced whole by :func:`citi.io.atomic_path`). The
kernel drops a flock when its holder exits, however it exits, so the lock of a killed process is
stale by construction and the next command simply takes it over. The holder writes its pid into
the file, only so that the refusal can name it. Where ``fcntl`` does not exist (Windows), nothing
is locked.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from citi.errors import CitiError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]


def lock_file_for(path: str | os.PathLike) -> Path:
    """The lock file of the output ``path``: ``.NAME.lock`` beside it."""
    path = Path(os.path.abspath(path))
    return path.parent / f".{path.name or 'root'}.lock"


def _holder(lock: Path) -> str:
    try:
        pid = lock.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        pid = ""
    return f"pid {pid}" if pid.isdigit() else "a process that has not written its pid yet"


@contextlib.contextmanager
def output_lock(path: str | os.PathLike, option: str = "--out") -> Iterator[Path]:
    """Hold the lock of the output ``path`` for the block; a held lock is one error line
    naming ``path`` and the holder's pid."""
    lock = lock_file_for(path)
    if fcntl is None:
        yield lock
        return
    top = lock.parent  # the top directory this call creates, removed again when empty
    while not top.parent.exists() and top.parent != top:
        top = top.parent
    created = None if top.exists() else top
    while True:
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise CitiError(
                f"{option}: cannot create its lock file {lock}: {err.strerror}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CitiError(
                f"{option}: {path} is in use by another citi command ({_holder(lock)}); wait "
                f"for it to finish or choose another {option}"
            ) from None
        # The holder before us may have removed the file between our open and our flock: then
        # we locked an orphan, and must lock the file now at that path instead.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        yield lock
    finally:
        # Unlinked while still locked, so a waiting opener sees the orphan check above.
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)
        _remove_empty(lock.parent, created)


def _remove_empty(directory: Path, top: Path | None) -> None:
    """Remove ``directory`` and its parents up to ``top`` while they are empty (a command that
    failed before writing anything leaves no directories behind)."""
    if top is None:
        return
    while True:
        try:
            directory.rmdir()
        except OSError:
            return
        if directory == top:
            return
        directory = directory.parent
