"""XEP-0261 in-band bytestreams transport, and the XEP-0047 stanzas it carries.

The transport element only names the bytestream (sid, block size); the bytes
then travel as base64 in IQ-sets (``<open/>``, ``<data seq=…/>``, ``<close/>``),
each acknowledged, which is what gives flow control: the sender keeps a
bounded window of unacknowledged blocks.
"""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from signalling.jingle import namespaces as ns
from signalling.jingle.errors import bad_request

IBB_STANZAS = "http://jabber.org/protocol/ibb"  # XEP-0047
DEFAULT_BLOCK_SIZE = 4096
MAX_BLOCK_SIZE = 65535  # XEP-0047 §2.1: block-size is an unsigned short


@dataclass(frozen=True)
class IbbTransport:
    """XEP-0261 §2 <transport xmlns='urn:xmpp:jingle:transports:ibb:1'/>."""

    sid: str
    block_size: int = DEFAULT_BLOCK_SIZE

    @property
    def namespace(self) -> str:
        return ns.IBB

    def to_element(self) -> ET.Element:
        return ET.Element(f"{{{ns.IBB}}}transport",
                          {"block-size": str(self.block_size), "sid": self.sid})


def parse_transport(el: ET.Element) -> IbbTransport:
    sid = el.get("sid")
    try:
        block_size = int(el.get("block-size", str(DEFAULT_BLOCK_SIZE)))
    except ValueError:
        raise bad_request("ibb block-size is not a number") from None
    if not sid or not 0 < block_size <= MAX_BLOCK_SIZE:
        raise bad_request("ibb transport needs a sid and a block-size of 1..65535")
    return IbbTransport(sid, block_size)


@dataclass(frozen=True)
class IbbOpen:
    sid: str
    block_size: int


@dataclass(frozen=True)
class IbbData:
    sid: str
    seq: int  # XEP-0047 §2.2: 16-bit, wraps to 0
    data: bytes


@dataclass(frozen=True)
class IbbClose:
    sid: str


IbbPayload = IbbOpen | IbbData | IbbClose


def build(payload: IbbPayload) -> ET.Element:
    if isinstance(payload, IbbOpen):
        return ET.Element(f"{{{IBB_STANZAS}}}open", {
            "block-size": str(payload.block_size), "sid": payload.sid, "stanza": "iq"})
    if isinstance(payload, IbbData):
        el = ET.Element(f"{{{IBB_STANZAS}}}data",
                        {"seq": str(payload.seq & 0xFFFF), "sid": payload.sid})
        el.text = base64.b64encode(payload.data).decode()
        return el
    return ET.Element(f"{{{IBB_STANZAS}}}close", {"sid": payload.sid})


def parse(el: ET.Element) -> IbbPayload:
    local = el.tag.rpartition("}")[2]
    sid = el.get("sid")
    if not sid:
        raise bad_request("ibb element without sid")
    if local == "open":
        if el.get("stanza", "iq") != "iq":
            raise bad_request("only stanza='iq' in-band bytestreams are supported")
        try:
            block_size = int(el.get("block-size", ""))
        except ValueError:
            raise bad_request("ibb open without a numeric block-size") from None
        return IbbOpen(sid, block_size)
    if local == "data":
        try:
            seq = int(el.get("seq", ""))
            data = base64.b64decode((el.text or "").strip(), validate=True)
        except (ValueError, binascii.Error):
            raise bad_request("ibb data with a bad seq or base64") from None
        if not 0 <= seq <= 0xFFFF:
            raise bad_request("ibb seq out of range")
        return IbbData(sid, seq, data)
    if local == "close":
        return IbbClose(sid)
    raise bad_request(f"unknown ibb element <{local}/>")
