"""The interop matrix (peer x scenario) the interop tests fill in as they pass.

Printed at the end of a run (tests/interop/conftest.py) and written as Markdown to
``$PJ_INTEROP_MATRIX`` when that is set; the README's table comes from it.
"""

from __future__ import annotations

import os
from pathlib import Path

ROWS: dict[tuple[str, str], str] = {}


def record(peer: str, scenario: str, outcome: str) -> None:
    ROWS[(peer, scenario)] = outcome


def markdown() -> str:
    lines = ["| peer | scenario | outcome |", "| --- | --- | --- |"]
    lines += [f"| {peer} | {scenario} | {outcome} |"
              for (peer, scenario), outcome in ROWS.items()]
    return "\n".join(lines) + "\n"


def write() -> None:
    target = os.environ.get("PJ_INTEROP_MATRIX")
    if target and ROWS:
        Path(target).write_text(markdown())
