"""Print the interop matrix the Dino tests filled in (tests/interop/matrix.py)."""

from __future__ import annotations

from typing import Any

from tests.interop import matrix


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if matrix.ROWS:
        terminalreporter.write_sep("-", "interop matrix")
        terminalreporter.write(matrix.markdown())
        matrix.write()
