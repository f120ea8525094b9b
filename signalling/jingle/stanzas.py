"""Parsing and building of Jingle IQs (XEP-0166 §7) as plain dataclasses.

Works on ``xml.etree.ElementTree`` elements, which is what slixmpp stanzas
wrap (``stanza.xml``) and what the XEPs' example files parse into, so the core
never sees slixmpp. Descriptions, transports and session-info payloads are
parsed by the plug-ins registered in :class:`Formats`; an element no plug-in
knows is kept as :class:`UnknownPayload` so the session can answer
``unsupported-applications`` / ``unsupported-transports`` / ``unsupported-info``
as the XEP says instead of failing to parse.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from signalling.jingle import namespaces as ns
from signalling.jingle.errors import StanzaError, bad_request
from signalling.jingle.states import Action, Reason, Role, Senders


@runtime_checkable
class Payload(Protocol):
    """A parsed description, transport or info element (plug-ins implement it)."""

    @property
    def namespace(self) -> str: ...

    def to_element(self) -> ET.Element: ...


@dataclass(frozen=True)
class UnknownPayload:
    """An element in a namespace no plug-in handles, kept verbatim."""

    element: ET.Element = field(compare=False)
    namespace: str = ""

    def to_element(self) -> ET.Element:
        return self.element


Parser = Callable[[ET.Element], Payload]


@dataclass(frozen=True)
class Formats:
    """The plug-ins: namespace -> parser for descriptions, transports and infos."""

    descriptions: Mapping[str, Parser] = field(default_factory=dict)
    transports: Mapping[str, Parser] = field(default_factory=dict)
    infos: Mapping[str, Parser] = field(default_factory=dict)


@dataclass(frozen=True)
class Content:
    """XEP-0166 §7.3 <content/>: one application over one transport."""

    creator: Role
    name: str
    description: Payload | None = None
    transport: Payload | None = None
    senders: Senders = Senders.BOTH
    disposition: str | None = None


@dataclass(frozen=True)
class ReasonInfo:
    """XEP-0166 §7.4 <reason/>."""

    condition: Reason
    text: str | None = None
    alternative_sid: str | None = None


@dataclass(frozen=True)
class Jingle:
    """A parsed <jingle/> element."""

    action: Action
    sid: str
    initiator: str | None = None
    responder: str | None = None
    contents: tuple[Content, ...] = ()
    reason: ReasonInfo | None = None
    info: Payload | None = None


@dataclass(frozen=True)
class JingleIq:
    """An IQ-set carrying Jingle, with the addresses the stream gave it."""

    id: str
    sender: str
    recipient: str
    jingle: Jingle


def _tag(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def parse_iq(iq: ET.Element, formats: Formats) -> JingleIq:
    """Parse an IQ-set whose child is <jingle/>; malformed input -> bad-request."""
    if iq.get("type") != "set":
        raise bad_request("a Jingle request must be an IQ of type set")
    child = iq.find(_tag(ns.JINGLE, "jingle"))
    if child is None:
        raise bad_request("no <jingle/> element")
    return JingleIq(
        id=iq.get("id", ""),
        sender=iq.get("from", ""),
        recipient=iq.get("to", ""),
        jingle=parse_jingle(child, formats),
    )


def parse_jingle(el: ET.Element, formats: Formats) -> Jingle:
    try:
        action = Action(el.get("action", ""))
    except ValueError:
        raise bad_request(f"unknown action {el.get('action')!r}") from None
    sid = el.get("sid")
    if not sid:
        raise bad_request("missing sid")
    contents: list[Content] = []
    reason: ReasonInfo | None = None
    info: Payload | None = None
    for child in el:
        namespace, local = _split(child.tag)
        if namespace == ns.JINGLE and local == "content":
            contents.append(_parse_content(child, formats))
        elif namespace == ns.JINGLE and local == "reason":
            reason = _parse_reason(child)
        elif info is None:
            parser = formats.infos.get(namespace)
            info = parser(child) if parser else UnknownPayload(child, namespace)
    names = [(c.creator, c.name) for c in contents]
    if len(set(names)) != len(names):
        raise bad_request("two contents share a creator and name")
    return Jingle(
        action=action,
        sid=sid,
        initiator=el.get("initiator"),
        responder=el.get("responder"),
        contents=tuple(contents),
        reason=reason,
        info=info,
    )


def _parse_content(el: ET.Element, formats: Formats) -> Content:
    try:
        creator = Role(el.get("creator", ""))
    except ValueError:
        raise bad_request(f"content creator {el.get('creator')!r}") from None
    name = el.get("name")
    if not name:
        raise bad_request("content without a name")
    try:
        senders = Senders(el.get("senders", "both"))
    except ValueError:
        raise bad_request(f"content senders {el.get('senders')!r}") from None
    description: Payload | None = None
    transport: Payload | None = None
    for child in el:
        namespace, local = _split(child.tag)
        if local == "description":
            parser = formats.descriptions.get(namespace)
            description = parser(child) if parser else UnknownPayload(child, namespace)
        elif local == "transport":
            parser = formats.transports.get(namespace)
            transport = parser(child) if parser else UnknownPayload(child, namespace)
    return Content(creator, name, description, transport, senders, el.get("disposition"))


def _parse_reason(el: ET.Element) -> ReasonInfo:
    condition: Reason | None = None
    text: str | None = None
    alternative: str | None = None
    for child in el:
        _namespace, local = _split(child.tag)
        if local == "text":
            text = child.text or ""
        elif condition is None:
            try:
                condition = Reason(local)
            except ValueError:
                # XEP-0166 §7.4 lists the conditions; an unknown one still ends
                # the session, so keep it as a general error rather than refuse.
                condition = Reason.GENERAL_ERROR
                text = text or local
            if condition is Reason.ALTERNATIVE_SESSION:
                sid_el = child.find(_tag(ns.JINGLE, "sid"))
                alternative = sid_el.text if sid_el is not None else None
    if condition is None:
        raise bad_request("<reason/> without a condition")
    return ReasonInfo(condition, text, alternative)


def parse_error(iq: ET.Element) -> StanzaError:
    """The <error/> of an IQ of type error (RFC 6120 §8.3, XEP-0166 §8)."""
    error = iq.find(_tag(ns.CLIENT, "error"))
    if error is None:
        error = iq.find("error")
    if error is None:
        return StanzaError("cancel", "undefined-condition")
    condition = "undefined-condition"
    jingle_condition: str | None = None
    text: str | None = None
    for child in error:
        namespace, local = _split(child.tag)
        if namespace == ns.STANZAS and local == "text":
            text = child.text
        elif namespace == ns.STANZAS:
            condition = local
        elif namespace == ns.JINGLE_ERRORS:
            jingle_condition = local
    return StanzaError(error.get("type", "cancel"), condition, jingle_condition, text)


def build_jingle(j: Jingle) -> ET.Element:
    """The <jingle/> element of a request."""
    el = ET.Element(_tag(ns.JINGLE, "jingle"), {"action": j.action.value, "sid": j.sid})
    if j.initiator:
        el.set("initiator", j.initiator)
    if j.responder:
        el.set("responder", j.responder)
    for content in j.contents:
        c = ET.SubElement(el, _tag(ns.JINGLE, "content"),
                          {"creator": content.creator.value, "name": content.name})
        if content.senders is not Senders.BOTH:
            c.set("senders", content.senders.value)
        if content.disposition:
            c.set("disposition", content.disposition)
        if content.description is not None:
            c.append(content.description.to_element())
        if content.transport is not None:
            c.append(content.transport.to_element())
    if j.reason is not None:
        r = ET.SubElement(el, _tag(ns.JINGLE, "reason"))
        cond = ET.SubElement(r, _tag(ns.JINGLE, j.reason.condition.value))
        if j.reason.alternative_sid:
            ET.SubElement(cond, _tag(ns.JINGLE, "sid")).text = j.reason.alternative_sid
        if j.reason.text:
            ET.SubElement(r, _tag(ns.JINGLE, "text")).text = j.reason.text
    if j.info is not None:
        el.append(j.info.to_element())
    return el


def build_error(error: StanzaError) -> ET.Element:
    """The <error/> child of an IQ error (RFC 6120 §8.3.2: in the stream's namespace)."""
    el = ET.Element(_tag(ns.CLIENT, "error"), {"type": error.type})
    ET.SubElement(el, _tag(ns.STANZAS, error.condition))
    if error.jingle_condition:
        ET.SubElement(el, _tag(ns.JINGLE_ERRORS, error.jingle_condition))
    if error.text:
        ET.SubElement(el, _tag(ns.STANZAS, "text")).text = error.text
    return el

