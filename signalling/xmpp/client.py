"""The slixmpp edge: login, roster, presence, disco/caps and Jingle IQ plumbing.

A thin adapter in the aioquic ``asyncio/protocol.py`` manner: it turns stream
events into calls on a :class:`StreamListener` and turns the core's outgoing
stanzas into slixmpp stanzas; it makes no Jingle decision itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from bus.config import AccountConfig
from bus.messages import ContactAction, ContactInfo
from signalling.contacts import OnlineResource
from signalling.jingle import namespaces as ns
from signalling.jingle.errors import StanzaError
from signalling.jingle.ibb import IBB_STANZAS
from signalling.jingle.session import SendError, SendRequest, SendResult, Stanza
from signalling.jingle.stanzas import build_error, build_jingle, parse_error
from signalling.xmpp import serializer

log = logging.getLogger(__name__)

RECONNECT_MAX = 30.0
# A refused login is not fixed by retrying: wait long, do not hammer the server (or
# lock the account with its brute-force protection).
AUTH_RETRY_FIRST = 60.0
AUTH_RETRY_MAX = 900.0
BYTESTREAMS = "http://jabber.org/protocol/bytestreams"  # XEP-0065
EXTDISCO = "urn:xmpp:extdisco:2"  # XEP-0215
_JMI_PREFIXES = (f"{{{ns.JMI}}}", f"{{{ns.JMI_1}}}", f"{{{ns.CARBONS}}}sent")


class StreamListener(Protocol):
    def on_connected(self, jid: str, encrypted: bool) -> None: ...
    def on_disconnected(self, reason: str) -> None: ...
    def on_jingle_iq(self, element: ET.Element) -> None: ...
    def on_response(self, iq_id: str, error: StanzaError | None) -> None: ...
    def on_unavailable(self, jid: str) -> None: ...
    def on_ibb_iq(self, element: ET.Element) -> None: ...
    def on_message(self, element: ET.Element) -> None: ...
    def on_interrupted(self, reason: str) -> None: ...
    def on_resumed(self, jid: str) -> None: ...
    def on_login_failed(self, reason: str) -> None: ...
    def on_contact_request(self, jid: str) -> None: ...
    def on_contact_state(self, jid: str, subscription: str) -> None: ...


class XmppClient(slixmpp.ClientXMPP):
    def __init__(self, account: AccountConfig, features: Iterable[str],
                 listener: StreamListener, approve_all: bool = False) -> None:
        super().__init__(f"{account.jid}/{account.resource}", account.password)
        serializer.install()
        self.account = account
        self.listener = listener
        self._features = tuple(features)
        self._stopping = False
        self._backoff = 1.0
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0115")
        self.register_plugin("xep_0199")
        # XEP-0198: a stream that breaks (a network change) is resumed, so the server
        # neither tells contacts we left nor drops what was in flight.
        self.register_plugin("xep_0198")
        self.enable_direct_tls = False
        if account.tls == "off":
            self.enable_starttls = False
            self.enable_plaintext = True
            self.plugin["feature_mechanisms"].unencrypted_scram = True
            self.plugin["feature_mechanisms"].unencrypted_plain = True
        elif account.tls == "optional":
            # STARTTLS whenever offered, without certificate checks (self-signed
            # servers); plaintext login only where the server offers no TLS.
            self.plugin["feature_mechanisms"].unencrypted_scram = True
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            self.ssl_context = context
        # Contacts are the user's decision (RFC 6121 §3.1.3): a subscription request is
        # reported and waits, unless contacts.approve = "all" asked for the old way.
        self.auto_authorize = True if approve_all else None
        self.auto_subscribe = approve_all
        self._subscriptions: dict[str, str] = {}  # bare JID -> last reported state
        self._roster_loaded = False
        self.add_event_handler("roster_subscription_request", self._on_subscription_request)
        self.add_event_handler("roster_update", self._on_roster_update)
        self.add_event_handler("connected", self._on_connected)
        self.add_event_handler("session_start", self._on_session_start)
        self.add_event_handler("disconnected", self._on_disconnected)
        self.add_event_handler("session_resumed", self._on_resumed)
        self.add_event_handler("session_end", self._on_session_end)
        self.add_event_handler("connection_failed", self._on_connection_failed)
        self.add_event_handler("failed_all_auth", self._on_auth_failed)
        self.add_event_handler("no_auth", self._on_no_auth)
        self._auth_failed = False
        self.add_event_handler("presence_unavailable", self._on_presence_unavailable)
        self.register_handler(Callback(
            "Jingle", MatchXPath(f"{{{ns.CLIENT}}}iq/{{{ns.JINGLE}}}jingle"), self._on_jingle
        ))
        # XEP-0353 messages, direct or as carbons (XEP-0280) of what our other devices sent.
        self.register_handler(Callback("JMI", MatchXPath(f"{{{ns.CLIENT}}}message"),
                                       self._on_message))
        for local in ("open", "data", "close"):
            self.register_handler(Callback(
                f"IBB {local}", MatchXPath(f"{{{ns.CLIENT}}}iq/{{{IBB_STANZAS}}}{local}"),
                self._on_ibb))

    # --- connection -------------------------------------------------------------------

    def start(self) -> None:
        host = self.account.server or self.boundjid.domain
        self.connect(host, self.account.port)

    async def stop(self) -> None:
        self._stopping = True
        if self.is_connected():
            self.disconnect(wait=1.0)
            await asyncio.sleep(0)

    def _on_connected(self, _event: Any) -> None:
        # Jingle signalling is small, latency-bound stanzas (an accept right after a
        # ringing): without TCP_NODELAY, Nagle and the peer's delayed ACK hold the
        # second one back ~40 ms.
        sock = self.transport.get_extra_info("socket") if self.transport else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def _on_session_start(self, _event: Any) -> None:
        self._backoff = 1.0
        disco = self.plugin["xep_0030"]
        for feature in self._features:
            disco.add_feature(feature)
        disco.add_identity("client", "pc", "pyjingle")
        try:
            await self.get_roster(timeout=10)
        except (IqError, IqTimeout) as exc:
            log.warning("roster not loaded: %s", exc)
        self._subscriptions = {c.jid: c.subscription for c in self.contacts()}
        self._roster_loaded = True
        await self.plugin["xep_0115"].update_caps()
        await self._enable_carbons()
        self.send_presence()
        encrypted = self.transport is not None and (
            self.transport.get_extra_info("ssl_object") is not None
        )
        self.listener.on_connected(str(self.boundjid), encrypted)

    async def _enable_carbons(self) -> None:
        """XEP-0280 §4: copies of what our other devices send, so that a call answered
        on one of them stops ringing here (XEP-0353 §3.3)."""
        iq = self.make_iq_set()
        iq.xml.append(ET.Element(f"{{{ns.CARBONS}}}enable"))
        try:
            await iq.send(timeout=5)
        except (IqError, IqTimeout) as exc:
            log.info("message carbons not enabled: %s", exc)

    def _on_message(self, message: Any) -> None:
        if message["type"] == "error":
            return
        if any(child.tag.startswith(_JMI_PREFIXES) for child in message.xml):
            self.listener.on_message(message.xml)

    def send_message_element(self, element: ET.Element) -> None:
        """A <message/> built by the core (XEP-0353), sent as it is."""
        message = self.Message(xml=element)
        message.send()

    def _on_disconnected(self, reason: Any) -> None:
        if self.plugin["xep_0198"].sm_id and not self._stopping:
            self.listener.on_interrupted(str(reason) or "stream closed")
        else:
            self.listener.on_disconnected(str(reason) or "stream closed")
        self._reconnect()

    def _on_resumed(self, _event: Any) -> None:
        self._backoff = 1.0
        self.listener.on_resumed(str(self.boundjid))

    def _on_session_end(self, _event: Any) -> None:
        # The server would not resume the stream: what it held is gone.
        self.listener.on_disconnected("stream could not be resumed")

    def local_address(self) -> str | None:
        """The address our stream leaves from (None when not connected)."""
        sock = self.transport.get_extra_info("socket") if self.transport else None
        if sock is None:
            return None
        try:
            return str(sock.getsockname()[0])
        except OSError:
            return None

    def drop_stream(self) -> None:
        """Give up a stream whose address is gone; the reconnect resumes it."""
        self.abort()

    def _on_connection_failed(self, error: Any) -> None:
        host = self.account.server or self.boundjid.domain
        why = getattr(error, "strerror", None) or str(error)
        self.listener.on_login_failed(
            f"cannot reach the server {host}:{self.account.port} ({why}): check "
            "account.server and account.port")

    def _on_auth_failed(self, _event: Any) -> None:
        self._auth_failed = True
        self.listener.on_login_failed(
            f"authentication failed for {self.boundjid.bare}: check account.password "
            "(and account.jid)")

    def _on_no_auth(self, _event: Any) -> None:
        encrypted = self.transport is not None and (
            self.transport.get_extra_info("ssl_object") is not None)
        self._auth_failed = True
        if not encrypted and self.account.tls == "required":
            self.listener.on_login_failed(
                "TLS is required but the server offered none (no STARTTLS): check "
                "account.tls, or the server's TLS setup")
        else:
            self.listener.on_login_failed(
                "no login method in common with the server: check account.tls")

    def _reconnect(self) -> None:
        if self._stopping:
            return
        if self._auth_failed:
            self._auth_failed = False
            self._backoff = min(max(self._backoff * 2, AUTH_RETRY_FIRST), AUTH_RETRY_MAX)
            log.info("login refused: next attempt in %.0f s", self._backoff)
            self.loop.call_later(self._backoff,
                                 lambda: None if self._stopping else self.start())
            return
        delay, self._backoff = self._backoff, min(self._backoff * 2, RECONNECT_MAX)
        log.info("reconnecting in %.0f s", delay)
        self.loop.call_later(delay, lambda: None if self._stopping else self.start())

    def _on_presence_unavailable(self, presence: Any) -> None:
        self.listener.on_unavailable(str(presence["from"]))

    # --- jingle ---------------------------------------------------------------------

    def _on_jingle(self, iq: Any) -> None:
        if iq["type"] in ("set", "get"):
            self.listener.on_jingle_iq(iq.xml)

    def _on_ibb(self, iq: Any) -> None:
        if iq["type"] == "set":
            self.listener.on_ibb_iq(iq.xml)

    def send_request(self, to: str, payload: ET.Element,
                     done: Callable[[StanzaError | None], None]) -> None:
        """An IQ-set with ``payload``; ``done(None)`` on result, ``done(error)`` otherwise."""
        iq = self.make_iq_set(ito=to)
        iq.xml.append(payload)

        def finished(future: asyncio.Future[Any]) -> None:
            if future.cancelled():
                done(StanzaError("cancel", "undefined-condition", None, "cancelled"))
                return
            exc = future.exception()
            if exc is None:
                done(None)
            elif isinstance(exc, IqError):
                done(parse_error(exc.iq.xml))
            else:
                done(StanzaError("wait", "remote-server-timeout", None, str(exc)))

        iq.send(timeout=60).add_done_callback(finished)

    def send_stanza(self, stanza: Stanza) -> None:
        if isinstance(stanza, SendRequest):
            iq = self.make_iq_set(ito=stanza.to)
            iq["id"] = stanza.iq_id
            iq.xml.append(build_jingle(stanza.jingle))
            future = iq.send(timeout=None)
            future.add_done_callback(lambda f, i=stanza.iq_id: self._on_answer(i, f))
        elif isinstance(stanza, SendResult):
            iq = self.make_iq_result(id=stanza.iq_id, ito=stanza.to)
            iq.send()
        elif isinstance(stanza, SendError):
            iq = self.Iq(sto=stanza.to)
            iq["id"] = stanza.iq_id
            # Set the type on the XML: through the stanza interface slixmpp would add
            # its own default <error><feature-not-implemented/></error> beside ours.
            iq.xml.set("type", "error")
            iq.xml.append(build_error(stanza.error))
            iq.send()

    def _on_answer(self, iq_id: str, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is None:
            self.listener.on_response(iq_id, None)
        elif isinstance(exc, IqError):
            self.listener.on_response(iq_id, parse_error(exc.iq.xml))
        # IqTimeout: the session's own timer decides (it is shorter than slixmpp's).

    # --- contacts ---------------------------------------------------------------------

    async def online_resources(self, bare: str, timeout: float = 3.0) -> list[OnlineResource]:
        """Every available resource of ``bare`` with its disco#info features."""
        presences: dict[str, Any] = dict(self.client_roster.presence(slixmpp.JID(bare)) or {})
        found = []
        for resource, raw in presences.items():
            info: dict[str, Any] = dict(raw)
            full = f"{bare}/{resource}"
            features: frozenset[str] = frozenset()
            try:
                disco = self.plugin["xep_0030"]
                reply = await disco.get_info(jid=slixmpp.JID(full), timeout=timeout)
                features = frozenset(reply["disco_info"]["features"])
            except (IqError, IqTimeout) as exc:
                log.info("disco#info of %s failed: %s", full, exc)
            found.append(OnlineResource(full, int(info.get("priority") or 0),
                                        str(info.get("show") or ""), features))
        return found

    async def find_proxy(self) -> tuple[str, str, int] | None:
        """The server's XEP-0065 proxy: (jid, host, port) of its streamhost, or None."""
        disco = self.plugin["xep_0030"]
        try:
            items = await disco.get_items(jid=slixmpp.JID(self.boundjid.domain), timeout=5)
        except (IqError, IqTimeout):
            return None
        for item in items["disco_items"]["items"]:
            jid = item[0]
            try:
                info = await disco.get_info(jid=slixmpp.JID(jid), timeout=5)
            except (IqError, IqTimeout):
                continue
            identities = {(i[0], i[1]) for i in info["disco_info"]["identities"]}
            if ("proxy", "bytestreams") not in identities:
                continue
            iq = self.make_iq_get(queryxmlns=BYTESTREAMS, ito=jid)
            try:
                reply = await iq.send(timeout=5)
            except (IqError, IqTimeout):
                continue
            host = reply.xml.find(f"{{{BYTESTREAMS}}}query/{{{BYTESTREAMS}}}streamhost")
            if host is not None and host.get("host") and (host.get("port") or "").isdigit():
                return host.get("jid", jid), host.get("host", ""), int(host.get("port", "0"))
        return None

    async def activate_proxy(self, proxy: str, sid: str, target: str) -> None:
        """XEP-0065 §6.3.4: ask the proxy to join our connection with the target's."""
        iq = self.make_iq_set(ito=proxy)
        query = ET.SubElement(iq.xml, f"{{{BYTESTREAMS}}}query", {"sid": sid})
        ET.SubElement(query, f"{{{BYTESTREAMS}}}activate").text = target
        await iq.send(timeout=10)

    async def external_services(self) -> ET.Element | None:
        """XEP-0215 §3.2: the server's <services/> (with credentials), or None."""
        iq = self.make_iq_get(ito=self.boundjid.domain)
        iq.xml.append(ET.Element(f"{{{EXTDISCO}}}services"))
        try:
            reply = await iq.send(timeout=5)
        except (IqError, IqTimeout) as exc:
            log.info("no external services (XEP-0215): %s", exc)
            return None
        services: ET.Element | None = reply.xml.find(f"{{{EXTDISCO}}}services")
        return services

    def in_roster(self, bare: str) -> bool:
        """A contact the user chose: we are subscribed to them (``to`` or ``both``).
        Someone who merely asked, or whom we only let see us (``from``), is not."""
        if bare not in self.client_roster:
            return False
        return bool(self.client_roster[bare]["subscription"] in ("both", "to"))

    def knows(self, bare: str) -> bool:
        """In the roster at all (whatever the subscription)?"""
        return any(c.jid == bare for c in self.contacts())

    def contacts(self) -> list[ContactInfo]:
        """The roster (RFC 6121 §2) with each subscription and pending request."""
        found = []
        own = self.boundjid.bare
        for jid in self.client_roster:
            item = self.client_roster[jid]
            subscription = str(item["subscription"] or "none")
            pending = bool(item["pending_in"]) and subscription not in ("from", "both")
            if str(jid) == own or (subscription == "none" and not pending
                                   and not item["pending_out"]):
                continue
            found.append(ContactInfo(str(jid), subscription, pending))
        return sorted(found, key=lambda c: c.jid)

    def _on_subscription_request(self, presence: Any) -> None:
        jid = presence["from"].bare
        item = self.client_roster[jid]
        if item["from"]:
            return  # already approved: the server answers this itself
        log.info("subscription request from %s: waiting for the user", jid)
        self.listener.on_contact_request(jid)

    def _on_roster_update(self, iq: Any) -> None:
        """Roster pushes (RFC 6121 §2.1.6): report each subscription that changed."""
        for jid, fields in iq["roster"]["items"].items():
            bare = jid.bare
            state = str(fields.get("subscription") or "none")
            if state == "remove":
                state = "none"
            if self._subscriptions.get(bare, "none") != state:
                self._subscriptions[bare] = state
                if self._roster_loaded:
                    self.listener.on_contact_state(bare, state)

    async def change_contact(self, action: ContactAction, jid: str) -> None:
        """approve / deny / add / remove, as RFC 6121 §3 and §2.5 describe them."""
        item = self.client_roster[jid]
        if action is ContactAction.APPROVE:
            item.authorize()
            if not item["to"]:
                item.subscribe()  # and ask for theirs, so calls may go both ways
        elif action is ContactAction.DENY:
            item.unauthorize()
        elif action is ContactAction.ADD:
            await self._roster_set(jid)
            item.subscribe()
        elif action is ContactAction.REMOVE:
            await self._roster_set(jid, subscription="remove")

    async def _roster_set(self, jid: str, **fields: str) -> None:
        sent = self.update_roster(slixmpp.JID(jid), timeout=10, **fields)
        if sent is not None:
            await sent

