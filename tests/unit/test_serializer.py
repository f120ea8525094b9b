"""The signalling process's XML escape gives exactly slixmpp's output (its speed is
measured by bench.ibb, not here)."""

from hypothesis import given
from hypothesis import strategies as st

from signalling.xmpp import serializer


@given(st.text())
def test_the_same_output_as_slixmpp_for_any_text(text):
    assert serializer.escape(text) == serializer.ORIGINAL(text, False)
    assert serializer.escape(text, True) == serializer.ORIGINAL(text, True)


def test_installed_it_serializes_stanzas_the_same():
    from slixmpp.xmlstream import ET

    element = ET.fromstring("<data xmlns='http://jabber.org/protocol/ibb' seq='1' sid='a&amp;b'>"
                            "x&lt;y &amp; 'q' \"r\"</data>")
    module = serializer._tostring
    serializer.install()
    fast = module.tostring(element)
    module.escape = serializer.ORIGINAL
    try:
        assert module.tostring(element) == fast
    finally:
        serializer.install()
