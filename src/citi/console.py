"""The rich consoles every part of citi prints through (library code never imports the CLI)."""

from __future__ import annotations

from rich.console import Console

console = Console(stderr=False)
err_console = Console(stderr=True)
