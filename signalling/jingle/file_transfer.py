"""XEP-0234 file transfer description, its session-info payloads, and XEP-0300 hashes.

The offer (§4) describes one file; a ``<range/>`` (§6.1) in the answer asks for
the part from ``offset`` on, which is how an interrupted transfer resumes.
After the bytes, the sender may confirm the hash in a ``checksum`` session-info
(§7.1) and the receiver says ``received`` (§7.2).
"""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from signalling.jingle import namespaces as ns
from signalling.jingle.errors import bad_request, unsupported_info

# XEP-0300 §3 algorithm names we can verify (hashlib names beside them).
HASH_ALGORITHMS = {"sha-256": "sha256", "sha3-256": "sha3_256", "blake2b-256": "blake2b-256"}


@dataclass(frozen=True)
class Hash:
    """XEP-0300 <hash algo='...'>base64</hash>."""

    algo: str
    value: bytes

    def to_element(self) -> ET.Element:
        el = ET.Element(f"{{{ns.HASHES}}}hash", {"algo": self.algo})
        el.text = base64.b64encode(self.value).decode()
        return el

    @classmethod
    def from_element(cls, el: ET.Element) -> Hash:
        algo = el.get("algo")
        if not algo:
            raise bad_request("hash without algo")
        try:
            value = base64.b64decode((el.text or "").strip(), validate=True)
        except binascii.Error:
            raise bad_request(f"hash {algo} is not base64") from None
        return cls(algo, value)


@dataclass(frozen=True)
class Range:
    """XEP-0234 §6.1: the part of the file to transfer."""

    offset: int = 0
    length: int | None = None


@dataclass(frozen=True)
class FileInfo:
    """XEP-0234 §5 <file/>."""

    name: str | None = None
    size: int | None = None
    media_type: str | None = None
    date: str | None = None
    desc: str | None = None
    hashes: tuple[Hash, ...] = ()
    range: Range | None = None

    def hash(self, algo: str) -> Hash | None:
        return next((h for h in self.hashes if h.algo == algo), None)

    def to_element(self) -> ET.Element:
        el = ET.Element(f"{{{ns.FILE_TRANSFER}}}file")
        for tag, value in (("media-type", self.media_type), ("name", self.name),
                           ("date", self.date), ("desc", self.desc),
                           ("size", None if self.size is None else str(self.size))):
            if value is not None:
                ET.SubElement(el, f"{{{ns.FILE_TRANSFER}}}{tag}").text = value
        if self.range is not None:
            attrs = {"offset": str(self.range.offset)} if self.range.offset else {}
            if self.range.length is not None:
                attrs["length"] = str(self.range.length)
            r = ET.SubElement(el, f"{{{ns.FILE_TRANSFER}}}range", attrs)
            for h in self.hashes:
                r.append(h.to_element())
        else:
            for h in self.hashes:
                el.append(h.to_element())
        return el

    @classmethod
    def from_element(cls, el: ET.Element) -> FileInfo:
        def text(tag: str) -> str | None:
            child = el.find(f"{{{ns.FILE_TRANSFER}}}{tag}")
            return None if child is None else (child.text or "")

        size = text("size")
        if size is not None and not size.strip().isdigit():
            raise bad_request(f"file size {size!r} is not a number")
        hashes = [Hash.from_element(h) for h in el.findall(f"{{{ns.HASHES}}}hash")]
        rng = None
        range_el = el.find(f"{{{ns.FILE_TRANSFER}}}range")
        if range_el is not None:
            try:
                offset = int(range_el.get("offset", "0"))
                length = range_el.get("length")
                rng = Range(offset, None if length is None else int(length))
            except ValueError:
                raise bad_request("range offset/length is not a number") from None
            if rng.offset < 0 or (rng.length is not None and rng.length < 0):
                raise bad_request("negative range")
            hashes += [Hash.from_element(h) for h in range_el.findall(f"{{{ns.HASHES}}}hash")]
        return cls(text("name"), None if size is None else int(size), text("media-type"),
                   text("date"), text("desc"), tuple(hashes), rng)


@dataclass(frozen=True)
class FileDescription:
    """XEP-0234 §4 <description/>: one file offered (or requested)."""

    file: FileInfo

    @property
    def namespace(self) -> str:
        return ns.FILE_TRANSFER

    def to_element(self) -> ET.Element:
        el = ET.Element(f"{{{ns.FILE_TRANSFER}}}description")
        el.append(self.file.to_element())
        return el


def parse_description(el: ET.Element) -> FileDescription:
    file_el = el.find(f"{{{ns.FILE_TRANSFER}}}file")
    if file_el is None:
        raise bad_request("file-transfer description without <file/>")
    return FileDescription(FileInfo.from_element(file_el))


@dataclass(frozen=True)
class Checksum:
    """§7.1 session-info: the sender's hash of the file, after the bytes."""

    creator: str
    name: str
    file: FileInfo

    @property
    def namespace(self) -> str:
        return ns.FILE_TRANSFER

    def to_element(self) -> ET.Element:
        el = ET.Element(f"{{{ns.FILE_TRANSFER}}}checksum",
                        {"creator": self.creator, "name": self.name})
        el.append(self.file.to_element())
        return el


@dataclass(frozen=True)
class Received:
    """§7.2 session-info: the receiver has the whole file."""

    creator: str
    name: str

    @property
    def namespace(self) -> str:
        return ns.FILE_TRANSFER

    def to_element(self) -> ET.Element:
        return ET.Element(f"{{{ns.FILE_TRANSFER}}}received",
                          {"creator": self.creator, "name": self.name})


def parse_info(el: ET.Element) -> Checksum | Received:
    local = el.tag.rpartition("}")[2]
    creator, name = el.get("creator", ""), el.get("name", "")
    if local == "checksum":
        file_el = el.find(f"{{{ns.FILE_TRANSFER}}}file")
        if file_el is None:
            raise bad_request("checksum without <file/>")
        return Checksum(creator, name, FileInfo.from_element(file_el))
    if local == "received":
        return Received(creator, name)
    raise unsupported_info(f"unknown file-transfer info <{local}/>")
