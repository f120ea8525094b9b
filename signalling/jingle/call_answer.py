"""The callee's answer to a call offer (XEP-0167 §5, XEP-0176, XEP-0320): pure rules.

Of the offered contents, the first audio content over ICE-UDP with a codec in
common is answered: our codec answer (the caller's payload-type ids kept), our
ICE credentials, and our DTLS fingerprint with the setup XEP-0320 derives from
the caller's (or none, for a plain offer where encryption allows it). A call
carries one audio content: the others are left out of the accept (XEP-0166
§7.2.8 lets the responder accept a subset). Nothing answered is a refusal with
the reason the session ends with.
"""

from __future__ import annotations

from dataclasses import dataclass

from signalling.jingle import ice_udp, rtp
from signalling.jingle.dtls import DtlsNegotiation, SecurityFailure
from signalling.jingle.stanzas import Content
from signalling.jingle.states import Reason


@dataclass(frozen=True)
class Answer:
    """What session-accept carries, and the offered content it answers (its
    transport has the caller's candidates and fingerprint, for the media worker)."""

    content: Content
    offered: Content


@dataclass(frozen=True)
class Refusal:
    reason: Reason
    text: str


def answer_call(offered: tuple[Content, ...], supported: tuple[rtp.PayloadType, ...],
                credentials: tuple[str, str], dtls: DtlsNegotiation) -> Answer | Refusal:
    for content in offered:
        desc, transport = content.description, content.transport
        if not (isinstance(desc, rtp.RtpDescription)
                and isinstance(transport, ice_udp.IceUdpTransport)):
            continue
        codecs = rtp.answer(desc, supported)
        if codecs is None:
            continue
        try:
            ours = dtls.answer(transport.fingerprint)
        except SecurityFailure as exc:
            return Refusal(Reason.SECURITY_ERROR, str(exc))
        ufrag, pwd = credentials
        return Answer(Content(content.creator, content.name, codecs,
                              ice_udp.IceUdpTransport(ufrag, pwd, fingerprint=ours),
                              content.senders), content)
    # XEP-0167 §5: no audio over ICE-UDP with a codec in common.
    return Refusal(Reason.FAILED_APPLICATION, "no codec in common with the caller")
