"""The error a control command ends with: a docs/control.md code and a message."""

from __future__ import annotations


class CommandError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
