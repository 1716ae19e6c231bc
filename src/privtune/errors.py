"""Errors the CLI turns into exit codes: InputError → 2 with one line, anything else → 1."""

from __future__ import annotations


class InputError(Exception):
    """Bad input or usage. The message is one line and names where (file:line) and which field."""

    def __init__(self, message: str, *, where: str | None = None, field: str | None = None):
        self.where = where
        self.field = field
        self.detail = message
        parts = [p for p in (where, f"field '{field}'" if field else None) if p]
        super().__init__(f"{': '.join(parts)}: {message}" if parts else message)


class EgressBlocked(RuntimeError):
    """A connection to a non-loopback address was attempted while the egress guard is on."""
