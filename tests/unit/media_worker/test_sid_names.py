"""A peer's session id never shapes a path (``{sid}`` in ``audio.output``)."""

from hypothesis import given
from hypothesis import strategies as st

from media_worker.audio import sid_file_name


def test_our_hex_sids_are_kept():
    assert sid_file_name("0123456789abcdef") == "0123456789abcdef"


def test_separators_and_parents_never_survive():
    for sid in ("../../etc/passwd", "a/b+c==", "..", ".hidden", "", "x" * 300, "a\x00b"):
        name = sid_file_name(sid)
        assert "/" not in name and "\\" not in name and "\x00" not in name
        assert not name.startswith(".") and 0 < len(name) <= 64


@given(st.text(), st.text())
def test_distinct_sids_get_distinct_names(a, b):
    if a != b:
        assert sid_file_name(a) != sid_file_name(b)
