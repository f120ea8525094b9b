"""SOCKS5 handshake (RFC 1928 / XEP-0065) and received-name sanitising."""

import pytest

from signalling.jingle.s5b import dstaddr
from transfer_worker.names import MAX_NAME_BYTES, inside, sanitize, unique_path
from transfer_worker.socks5 import Socks5Client, Socks5Error, Socks5Server

ADDR = dstaddr("vj3hs98y", "juliet@capulet.example/yn0cl4bnw0yr3vym",
               "romeo@montague.example/dr4hcr0st3lup4c")


def test_handshake_bytes_per_rfc1928():
    client = Socks5Client(ADDR)
    server = Socks5Server({ADDR})
    greeting = client.initial()
    assert greeting == b"\x05\x01\x00"
    reply = server.receive_data(greeting)
    assert reply == b"\x05\x00"
    request = client.receive_data(reply)
    assert request == b"\x05\x01\x00\x03\x28" + ADDR.encode() + b"\x00\x00"
    answer = server.receive_data(request + b"file data")
    assert answer == b"\x05\x00\x00\x03\x28" + ADDR.encode() + b"\x00\x00"
    assert server.ready and server.dstaddr == ADDR and server.leftover == b"file data"
    assert client.receive_data(answer + b"more") == b""
    assert client.ready and client.leftover == b"more"


def test_handshake_byte_by_byte():
    client, server = Socks5Client(ADDR), Socks5Server({ADDR})
    to_server, to_client = client.initial(), b""
    for _ in range(4):
        for b in to_server:
            to_client += server.receive_data(bytes([b]))
        to_server = b""
        for b in to_client:
            to_server += client.receive_data(bytes([b]))
        to_client = b""
    assert client.ready and server.ready


def test_wrong_dstaddr_is_refused():
    client, server = Socks5Client("0" * 40), Socks5Server({ADDR})
    answer = server.receive_data(client.receive_data(server.receive_data(client.initial())))
    assert answer[1] == 4 and server.failed  # host unreachable
    with pytest.raises(Socks5Error):
        client.receive_data(answer)


def test_auth_only_client_is_refused():
    with pytest.raises(Socks5Error):
        Socks5Server({ADDR}).receive_data(b"\x05\x01\x02")


@pytest.mark.parametrize("nasty, expected", [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\system32\\cmd.exe", "cmd.exe"),
    ("/absolute/path.txt", "path.txt"),
    ("..", "received-file"),
    (".", "received-file"),
    ("", "received-file"),
    (None, "received-file"),
    (".bashrc", "bashrc"),
    ("...hidden", "hidden"),
    ("name.", "name"),
    ("evil\x00.txt", "evil_.txt"),
    ("line\nbreak.txt", "line_break.txt"),
    ("bidi\u202etxt.exe", "bidi_txt.exe"),
    ("CON", "_CON"),
    ("nul.txt", "_nul.txt"),
    ("a:b*c?.txt", "a_b_c_.txt"),
    ("  spaced  ", "spaced"),
    ("café.txt", "café.txt"),
])
def test_sanitize_table(nasty, expected):
    assert sanitize(nasty) == expected


def test_long_names_keep_their_extension_and_fit():
    name = sanitize("é" * 300 + ".jpeg")
    assert name.endswith(".jpeg") and len(name.encode()) <= MAX_NAME_BYTES
    assert len(sanitize("x" * 1000).encode()) <= MAX_NAME_BYTES


def test_unique_path_never_overwrites(tmp_path):
    first = unique_path(tmp_path, "photo.jpg")
    assert first.name == "photo.jpg"
    first.write_text("x")
    assert unique_path(tmp_path, "photo.jpg").name == "photo (2).jpg"
    (tmp_path / "photo (2).jpg.part").write_text("partial")
    assert unique_path(tmp_path, "photo.jpg").name == "photo (3).jpg"
    assert inside(tmp_path, unique_path(tmp_path, sanitize("../../etc/passwd")))
