"""Atomic file output: every file citi writes appears whole or not at all."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    Works for files and directories: the caller writes whatever it likes at the yielded path.
    The temporary sits in the same directory so the final ``os.replace`` is atomic.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    except OSError as err:
        raise _named(err, path) from None
    target = tmp / path.name
    try:
        yield target
        if path.is_dir() and target.is_dir():
            # os.replace cannot replace a non-empty directory: move the old one aside first.
            old = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(target, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(target, path)
    except Exception as err:
        # A full disk, a quota or a name the file system refuses, whichever library was writing
        # (Python, safetensors, torch): report it against the output the user named, not the
        # temporary, which is removed below.
        os_err = os_error_behind(err)
        if os_err is not None:
            raise _named(os_err, path) from err
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# Write failures that are the machine's, not citi's: one error line, never a traceback.
WRITE_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for this file system or limit",
    errno.ENAMETOOLONG: "a name in this path is longer than the file system allows",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
}


def os_error_behind(err: BaseException | None) -> OSError | None:
    """The write failure (an errno of :data:`WRITE_ERRNOS`) behind ``err``: ``err`` itself, an
    exception it was raised from or during (torch.save's writer), or the ``(os error N)`` that
    Rust writers such as safetensors put in their message."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in WRITE_ERRNOS:
            return err
        m = re.search(r"\(os error (\d+)\)", str(err))
        if m and int(m.group(1)) in WRITE_ERRNOS:
            code = int(m.group(1))
            return OSError(code, os.strerror(code))
        err = err.__cause__ or err.__context__
    return None


def _named(err: OSError, path: Path) -> OSError:
    return OSError(err.errno, err.strerror or os.strerror(err.errno or 0), str(path))


def _temp_prefix(path: Path) -> str:
    # ".NAME." plus mkdtemp's 8 random characters and ".tmp" must stay a legal file name when
    # NAME itself is close to the limit: keep only NAME's start (clean_stale_temps still finds it).
    room = _name_max(path.parent) - len(".") - len(".") - 8 - len(".tmp")
    name = os.fsencode(path.name)[: max(room, 1)].decode(errors="ignore") or "x"
    return f".{name}."


def _name_max(directory: Path) -> int:
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def clean_stale_temps(directory: str | os.PathLike) -> list[Path]:
    """Remove the temporaries a killed ``atomic_path`` left in ``directory`` (``.NAME.*.tmp`` and
    ``.NAME.*.old``); call it only where no other process is writing. Returns what went."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stale = [
        p
        for p in directory.iterdir()
        if p.name.startswith(".") and p.name.endswith((".tmp", ".old")) and p.is_dir()
    ]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return stale


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def write_figure_atomic(path: str | os.PathLike, fig: Any, dpi: int) -> Path:
    """A matplotlib figure as a PNG of at most 256 colours (see :func:`palette_png`)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    with atomic_path(path) as tmp:
        tmp.write_bytes(palette_png(buffer.getvalue()))
    return Path(path)


def palette_png(data: bytes) -> bytes:
    """A PNG re-encoded with a palette of 256 colours on white. Plots use few colours, so it
    looks the same at about a third of matplotlib's RGBA size, which keeps the figures committed
    with a report small (tests/test_repository.py)."""
    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGBA")
    flat = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image).convert("RGB")
    out = io.BytesIO()
    flat.quantize(256).save(out, format="PNG", optimize=True)
    return out.getvalue()


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, turning a missing file or bad JSON into a one-line :class:`CitiError`."""
    from citi.errors import CitiError

    path = Path(path)
    if not path.is_file():
        raise CitiError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CitiError(f"{path}:{err.lineno}: malformed JSON ({err.msg})") from None
    except RecursionError:
        raise CitiError(f"{path}: JSON nested too deeply") from None
    except UnicodeDecodeError:
        raise CitiError(f"{path}: not UTF-8 text") from None


def regular_file_inside(path: str | os.PathLike, root: str | os.PathLike) -> Path | None:
    """``path`` resolved, when it is a regular file inside ``root`` once links are followed;
    None when nothing is there. A link leading out of ``root`` (a run directory someone else
    made, whose config.yaml points at a token file) or a FIFO, device or directory in its
    place is one error line: citi never reads, copies or uploads what such a name points at."""
    import stat

    from citi.errors import CitiError

    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return None
    real, inside = path.resolve(), Path(root).resolve()
    if real != inside and inside not in real.parents:
        raise CitiError(
            f"{path}: a link to {real}, outside {root}; files read from a run directory must "
            f"be regular files inside it"
        )
    try:
        regular = stat.S_ISREG(real.stat().st_mode)
    except OSError:  # a dangling link
        regular = False
    if not regular:
        raise CitiError(f"{path}: not a regular file; files read from a run directory must be")
    return real


def check_output(path: str | os.PathLike, kind: str = "dir", option: str = "--out") -> None:
    """Fail before any work when ``path`` cannot become the output ``kind`` (dir or file): an
    existing file where a directory is wanted (or the reverse), a file among its parents, a
    name longer than the file system allows, or a directory that cannot be written."""
    from citi.errors import CitiError

    path = Path(path)
    prefix = Path(path.anchor or ".")
    for part in path.parts[1:] if path.anchor else path.parts:
        limit = _name_max(prefix)
        if len(os.fsencode(part)) > limit:
            raise CitiError(
                f"{option}: the name {part[:24]}... is {len(os.fsencode(part))} bytes "
                f"long; the file system allows {limit}"
            )
        prefix = prefix / part
    if kind == "dir" and path.exists() and not path.is_dir():
        raise CitiError(f"{option}: {path} exists and is not a directory")
    if kind == "file" and path.is_dir():
        raise CitiError(f"{option}: {path} is a directory; give a file name")
    parent = path if kind == "dir" else path.parent
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise CitiError(f"{option}: {existing} is a file, so {path} cannot be created")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CitiError(f"{option}: {existing} is not writable")


def fingerprint(source: Any) -> str:
    """A short key that changes when ``source`` does: a path by its name, sizes and modification
    times (a folder: of its files), anything else (rows, text, None) by a hash of its JSON."""
    import hashlib

    if isinstance(source, str | os.PathLike) and Path(source).exists():
        path = Path(source)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        blob = json.dumps(
            [str(source), [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files]]
        )
    else:
        blob = json.dumps(source, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]
