"""One exception type for every user-facing error.

The CLI turns a :class:`CitiError` into a single ``citi: error: ...`` line and exit code 2, so any
code path that validates user input raises this instead of a bare ``ValueError`` with a traceback.
"""

from __future__ import annotations


class CitiError(Exception):
    """A problem with the user's input (a file, a record, an option) that is not a bug in citi."""

    exit_code = 2

    def __str__(self) -> str:
        # One line, whatever a file name, key or value quoted in the message contains.
        return " ".join(super().__str__().splitlines())


class DataError(CitiError):
    """A dataset is missing or one of its records is malformed."""


class ConfigError(CitiError):
    """An option or config value is invalid; the message names the CLI option."""
