"""Where datasets live: ``--data-dir``, else ``$CITI_DATA_DIR``, else ``~/.cache/citi/data``."""

from __future__ import annotations

import os
from pathlib import Path

from citi.errors import DataError

ENV_VAR = "CITI_DATA_DIR"
DATA_DIR_HELP = "directory of raw datasets (default: $CITI_DATA_DIR, else ~/.cache/citi/data)"


def default_data_dir() -> Path:
    return Path.home() / ".cache" / "citi" / "data"


def resolve_data_dir(option: str | os.PathLike | None = None) -> Path:
    """The data directory to read from. An explicitly given directory must exist."""
    if option:
        path = Path(option).expanduser()
        if not path.is_dir():
            raise DataError(f"--data-dir: {path} is not a directory")
        return path
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataError(f"{ENV_VAR}={env} is not a directory")
        return path
    return default_data_dir()
