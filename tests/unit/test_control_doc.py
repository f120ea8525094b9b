"""docs/control.md names every command, argument, error code and event the code has."""

import re
from pathlib import Path

from control import protocol as cp

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "control.md").read_text()


def test_every_command_and_argument_is_documented():
    for cmd, args in cp.COMMANDS.items():
        row = next((line for line in DOC.splitlines() if line.startswith(f"| `{cmd}` |")), None)
        assert row is not None, f"{cmd} is not in docs/control.md"
        for arg in args:
            assert f"`{arg}`" in row, f"{cmd}: argument {arg} is not documented"


def test_every_error_code_is_documented():
    codes = {v for k, v in vars(cp).items() if k.isupper() and isinstance(v, str)
             and re.fullmatch(r"[a-z-]+", v)}
    for code in codes:
        assert f"| `{code}` |" in DOC, f"error code {code} is not documented"


def test_every_event_the_supervisor_publishes_is_documented():
    source = (ROOT / "supervisor" / "agent.py").read_text()
    events = set(re.findall(r'_publish\("([a-z.]+)"', source)) | {"session.state"}
    assert len(events) >= 9
    for event in events:
        assert f"| `{event}` |" in DOC, f"event {event} is not documented"


def test_every_configuration_key_is_documented():
    from bus.config import KNOWN_KEYS

    doc = (ROOT / "docs" / "configuration.md").read_text()
    for section, keys in KNOWN_KEYS.items():
        for key in keys:
            assert f"`{section}.{key}`" in doc, f"{section}.{key} is not in docs/configuration.md"
