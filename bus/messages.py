"""Every message that crosses a process boundary inside one agent.

One module, one codec (as pyzmq's serialization guide advises): each message is
a frozen dataclass registered under its class name, encoded as the msgpack map
``{"v": SCHEMA_VERSION, "t": <type name>, "f": {<field>: <value>}}``.
Decoding checks the version, the type name and every field's type, so a peer
speaking another schema, or garbage, raises :class:`MessageError` instead of
crashing the receiver. Fields are plain values (str, int, float, bool, None),
enums (by value), tuples of those, or nested message-like dataclasses.

Who sends what:
- every process -> supervisor: ``Hello``, ``Heartbeat``, ``Goodbye``
- supervisor -> every process: ``Heartbeat``, ``Shutdown``
- supervisor -> signalling: ``WorkerStateChanged``, ``Command`` subclasses
- signalling -> supervisor: ``CommandSucceeded``, ``CommandFailed``, events
  (``SessionStateEvent``, ``ConnectionStateEvent``, ``TransportStateEvent``)
- signalling <-> media / transfer worker: session commands and their answers
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Union

import msgpack

SCHEMA_VERSION = 1
# Bounds of one bus frame (the largest message is an in-band block of at most
# 64 KiB, base64-free): ZeroMQ drops a peer that sends more (``MAXMSGSIZE``) and
# msgpack refuses longer containers before building them.
MAX_FRAME = 1 << 20
_UNPACK_LIMITS = {"max_str_len": MAX_FRAME, "max_bin_len": MAX_FRAME,
                  "max_array_len": 4096, "max_map_len": 64, "max_ext_len": 0}


class MessageError(Exception):
    """A frame could not be decoded into a known message (the sender's fault)."""


class UnsupportedVersion(MessageError):
    """The frame was encoded with another schema version."""


class Process(enum.StrEnum):
    """The processes of one agent; also their identities on the bus."""

    SUPERVISOR = "supervisor"
    SIGNALLING = "signalling"
    MEDIA = "media"
    TRANSFER = "transfer"


def worker_names(role: Process, count: int) -> tuple[str, ...]:
    """The bus identities of a pool of ``count`` workers of ``role``: the first is the
    role's own name ("media"), the others "media-2", "media-3", ..."""
    return tuple(role.value if i == 0 else f"{role.value}-{i + 1}" for i in range(count))


def role_of(name: str) -> Process:
    """The role of a bus identity ("media-2" -> MEDIA); ValueError if none."""
    return Process(name.split("-", 1)[0])


class WorkerState(enum.StrEnum):
    """Values of the ``worker.state`` control event (docs/control.md)."""

    STARTED = "started"
    EXITED = "exited"
    RESTARTED = "restarted"


class SessionKind(enum.StrEnum):
    CALL = "call"
    FILE = "file"


class Direction(enum.StrEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"


class ConnectionState(enum.StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


class TransportState(enum.StrEnum):
    CHECKING = "checking"
    CONNECTED = "connected"
    FAILED = "failed"
    CLOSED = "closed"


_REGISTRY: dict[str, type[Message]] = {}


@dataclass(frozen=True)
class Message:
    """Base of every bus message; subclasses register themselves by name."""

    _hints: ClassVar[dict[str, Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__name__ in _REGISTRY:
            raise TypeError(f"duplicate bus message name {cls.__name__}")
        _REGISTRY[cls.__name__] = cls


# --- liveness ---------------------------------------------------------------


@dataclass(frozen=True)
class Hello(Message):
    """A process announces itself after connecting (and after every restart)."""

    process: Process
    pid: int
    host: str


@dataclass(frozen=True)
class Heartbeat(Message):
    """Sent every ``bus.heartbeat_interval`` both ways; silence means trouble."""

    process: Process
    pid: int


@dataclass(frozen=True)
class Goodbye(Message):
    """A process is exiting on purpose; the supervisor must not restart it."""

    process: Process
    pid: int


@dataclass(frozen=True)
class Shutdown(Message):
    """Supervisor asks a process to exit cleanly."""

    reason: str


@dataclass(frozen=True)
class WorkerStateChanged(Message):
    """Supervisor tells signalling that a worker started, exited or restarted."""

    worker: Process
    state: WorkerState
    pid: int
    restarts: int
    exit_code: int | None = None
    name: str = ""  # its bus identity when one of a pool ("media-2"); "" = the role's


# --- control commands forwarded by the supervisor to signalling --------------


@dataclass(frozen=True)
class Command(Message):
    """Base of the control commands that signalling executes."""

    request_id: str


@dataclass(frozen=True)
class Call(Command):
    to: str


@dataclass(frozen=True)
class SendFile(Command):
    to: str
    path: str
    name: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class RequestFile(Command):
    """XEP-0234 §5: ask ``to`` to send us the file called ``name``."""

    to: str
    name: str


@dataclass(frozen=True)
class Accept(Command):
    sid: str
    dir: str | None = None


@dataclass(frozen=True)
class Reject(Command):
    sid: str
    reason: str = "decline"


@dataclass(frozen=True)
class Hangup(Command):
    sid: str
    reason: str = "success"


@dataclass(frozen=True)
class Mute(Command):
    sid: str
    muted: bool


class ContactAction(enum.StrEnum):
    """What the user decides about a contact (RFC 6121 §3, §2.5)."""

    APPROVE = "approve"  # approve their pending request (and ask for theirs)
    DENY = "deny"  # refuse their pending request
    ADD = "add"  # ask them for a subscription
    REMOVE = "remove"  # remove them from the roster


@dataclass(frozen=True)
class ListContacts(Command):
    """The roster with subscription states and pending requests."""


@dataclass(frozen=True)
class ChangeContact(Command):
    action: ContactAction
    jid: str


@dataclass(frozen=True)
class ContactInfo:
    jid: str  # bare
    subscription: str  # RFC 6121: none, to, from, both
    pending: bool  # their subscription request awaits the user


@dataclass(frozen=True)
class CommandSucceeded(Message):
    request_id: str
    sid: str | None = None
    contacts: tuple[ContactInfo, ...] | None = None  # the answer to ListContacts


@dataclass(frozen=True)
class CommandFailed(Message):
    request_id: str
    code: str
    message: str


# --- events published on the control socket ---------------------------------


@dataclass(frozen=True)
class ContactRequestEvent(Message):
    """``contact.request``: someone asks for our presence; the user decides."""

    ts: float
    jid: str


@dataclass(frozen=True)
class ContactStateEvent(Message):
    """``contact.state``: a subscription changed (RFC 6121 states)."""

    ts: float
    jid: str
    subscription: str


@dataclass(frozen=True)
class FileSummary:
    """What an incoming offer says about its file (XEP-0234 <file/>), so the user does
    not accept blind. ``hash`` is the name of the XEP-0300 algorithm offered, if any."""

    name: str
    size: int
    media_type: str | None = None
    description: str | None = None
    hash: str | None = None


@dataclass(frozen=True)
class SessionStateEvent(Message):
    """``session.state``: one per Jingle state change, DEINIT last."""

    ts: float
    sid: str
    peer: str
    kind: SessionKind
    direction: Direction
    state: str
    reason: str | None = None
    file: FileSummary | None = None  # an incoming file offer's, from RECEIVEDINITIATE on
    worker: str | None = None  # the pool member holding its media or bytes, once placed


@dataclass(frozen=True)
class ConnectionStateEvent(Message):
    """``connection.state`` of the XMPP stream; ``jid`` is the bound full JID."""

    ts: float
    state: ConnectionState
    jid: str
    reason: str | None = None
    encrypted: bool | None = None  # TLS on the client-to-server stream
    error: bool = False  # a login failure: ``reason`` says why and which key to check


@dataclass(frozen=True)
class SessionInfoEvent(Message):
    """``session.info`` (ours, beyond the contract's floor): the peer's XEP-0167 §7 session-info,
    e.g. ringing, mute of content ``name``, hold."""

    ts: float
    sid: str
    info: str
    name: str | None = None


@dataclass(frozen=True)
class TransportStateEvent(Message):
    """``transport.state`` of one session's transport, as its worker sees it."""

    ts: float
    sid: str
    state: TransportState
    method: str
    local: str | None = None
    remote: str | None = None
    candidates: tuple[str, ...] = ()  # types of the local candidates gathered
    encryption: str | None = None  # once connected: "dtls-srtp" or "none" (plain RTP)
    restart: bool = False  # an ICE restart (RFC 8445 §9) is under way or just completed
    reason: str | None = None  # why, when ``state`` is failed: for the user, in words


# --- signalling <-> workers --------------------------------------------------


@dataclass(frozen=True)
class IceServerInfo:
    """STUN/TURN servers learnt from the XMPP server (XEP-0215) for one call."""

    stun_host: str | None = None
    stun_port: int = 0
    turn_host: str | None = None
    turn_port: int = 0
    turn_username: str | None = None
    turn_password: str | None = None
    turn_transport: str = "udp"  # udp, tcp or tls
    turns_host: str | None = None  # TURN over TLS to fall back on (same credentials)
    turns_port: int = 0


@dataclass(frozen=True)
class PrepareMedia(Message):
    """Signalling asks the media worker to hold a call's media session.

    No socket is opened and no address gathered: the worker only creates the
    session and its ICE credentials (XEP-0176 ufrag/pwd carry no address).
    """

    sid: str
    controlling: bool
    servers: IceServerInfo | None = None
    relay_only: bool = False  # policy.relay_only, globally or for this peer


@dataclass(frozen=True)
class MediaPrepared(Message):
    """The call's ICE credentials and the sha-256 fingerprint of the worker's DTLS
    certificate (XEP-0320), for signalling to put in the transport."""

    sid: str
    ufrag: str
    pwd: str
    fingerprint: str = ""


@dataclass(frozen=True)
class IceCandidateInfo:
    """One ICE candidate as it crosses the bus (fields of XEP-0176 §5.2)."""

    component: int
    foundation: str
    generation: int
    id: str
    ip: str
    port: int
    priority: int
    protocol: str
    type: str
    rel_addr: str | None = None
    rel_port: int | None = None


@dataclass(frozen=True)
class CodecChoice:
    """The negotiated payload type a call sends and expects (XEP-0167 answer)."""

    payload_type: int
    name: str
    clock_rate: int
    channels: int
    fec: bool


@dataclass(frozen=True)
class DtlsParams:
    """XEP-0320 as negotiated: our handshake role and the peer's pinned fingerprint."""

    client: bool
    remote_hash: str
    remote_fingerprint: str


@dataclass(frozen=True)
class StartMedia(Message):
    """The session is accepted: gather, connect and stream.

    Sent only after accept, so no local address is gathered, let alone
    signalled, before the user agreed to the call.
    """

    sid: str
    remote_ufrag: str
    remote_pwd: str
    codec: CodecChoice
    remote_candidates: tuple[IceCandidateInfo, ...] = ()
    dtls: DtlsParams | None = None  # None: plain RTP (media.encryption allowed it)


@dataclass(frozen=True)
class LocalCandidates(Message):
    """Media worker -> signalling: candidates to send in a transport-info."""

    sid: str
    candidates: tuple[IceCandidateInfo, ...]


@dataclass(frozen=True)
class OpenMedia(Message):
    """Gather and check before accept, because ``policy.reveal_ip_before_accept``
    allows it for this caller; media (codec, DTLS) waits for ``StartMedia``."""

    sid: str
    remote_ufrag: str
    remote_pwd: str
    remote_candidates: tuple[IceCandidateInfo, ...] = ()


@dataclass(frozen=True)
class IceRestarted(Message):
    """Media worker -> signalling: a new ICE generation (our address changed, or the
    path died, or the peer restarted): new credentials and candidates for the peer."""

    sid: str
    ufrag: str
    pwd: str
    candidates: tuple[IceCandidateInfo, ...] = ()


@dataclass(frozen=True)
class RestartIce(Message):
    """Signalling -> media worker: the peer sent new ICE credentials (a restart, or the
    answer to ours); restart with them, or use them for the restart under way."""

    sid: str
    remote_ufrag: str
    remote_pwd: str
    remote_candidates: tuple[IceCandidateInfo, ...] = ()


@dataclass(frozen=True)
class RemoteCandidates(Message):
    """Signalling -> media worker: candidates the peer sent (trickled)."""

    sid: str
    candidates: tuple[IceCandidateInfo, ...]


@dataclass(frozen=True)
class MediaFlowing(Message):
    """ICE is connected and the first RTP packet arrived (libjingle's INPROGRESS)."""

    sid: str


@dataclass(frozen=True)
class SetMute(Message):
    sid: str
    muted: bool


@dataclass(frozen=True)
class SetHold(Message):
    """We put the call on hold (or take it off): nothing is sent while held."""

    sid: str
    held: bool


@dataclass(frozen=True)
class PeerMediaState(Message):
    """What the peer said of its media in session-info (XEP-0167 §7): the media
    worker keeps it for ``media.stats``, so a quiet peer is known to be quiet."""

    sid: str
    muted: bool
    held: bool


@dataclass(frozen=True)
class Hold(Command):
    sid: str
    held: bool


@dataclass(frozen=True)
class MediaStatsEvent(Message):
    """``media.stats``, about once a second per call."""

    ts: float
    sid: str
    sent_packets: int
    received_packets: int
    lost_packets: int
    jitter_ms: float
    rtt_ms: float | None = None
    codec: str | None = None
    concealed_frames: int = 0
    dropped_packets: int = 0  # malformed or unauthenticated datagrams discarded
    sent_octets: int = 0  # RTP payload octets, as in the RTCP sender report
    received_octets: int = 0
    peer_muted: bool = False  # the peer said mute / hold (session-info) and not yet unmute
    peer_held: bool = False
    muted: bool = False  # ours
    held: bool = False


@dataclass(frozen=True)
class S5bCandidateInfo:
    """One XEP-0260 candidate as it crosses the bus."""

    cid: str
    host: str
    jid: str
    port: int
    priority: int
    type: str


@dataclass(frozen=True)
class PrepareTransfer(Message):
    """Signalling asks the transfer worker for a file session and its direct candidates.

    Sending: ``path`` is the file, or for a request (``name`` set) the shared folder
    in which the worker looks the name up safely. Receiving: ``path`` is the download folder and
    ``name`` the peer's (unsanitised) name; the worker picks the safe final path
    and writes ``<path>.part`` until the file is committed. ``expected_dstaddr``
    is what a peer connecting to our candidates must ask for (XEP-0260 §2.2).
    """

    sid: str
    sending: bool
    path: str
    size: int
    expected_dstaddr: str
    name: str | None = None
    offset: int = 0
    peer: str = ""  # receiving: the sender's bare JID, to find a partial to resume
    date: str | None = None  # receiving: the offered file's date, idem
    max_rate: int = 0  # sending: bytes per second, 0 = as fast as possible
    algo: str = "sha-256"  # sending: the XEP-0300 algorithm announced to the peer


@dataclass(frozen=True)
class TransferPrepared(Message):
    """The worker listens on ``port`` at ``hosts`` (signalling makes the candidates)."""

    sid: str
    hosts: tuple[str, ...] = ()
    port: int = 0
    path: str | None = None  # receiving: the final path chosen; a request: the shared file
    offset: int = 0  # receiving: bytes already there from an interrupted transfer
    size: int = 0  # a request: the shared file's size
    found: bool = True  # a request: False when no such shared file exists


@dataclass(frozen=True)
class ConnectCandidates(Message):
    """Try the peer's candidates (highest priority first) with this dstaddr."""

    sid: str
    candidates: tuple[S5bCandidateInfo, ...]
    dstaddr: str
    own_proxy: bool = False  # connect to our own proxy candidate, to activate it


@dataclass(frozen=True)
class CandidateResult(Message):
    """Which peer candidate we reached (``cid``), or None: none (candidate-error)."""

    sid: str
    cid: str | None
    own_proxy: bool = False


@dataclass(frozen=True)
class UseConnection(Message):
    """The nominated pair (XEP-0260 §2.4): ours = the connection the peer made to us;
    via_own_proxy = our own connection to the proxy we offered (after activation)."""

    sid: str
    ours: bool
    via_own_proxy: bool = False
    offset: int = 0  # sending: start here (the receiver's XEP-0234 range)
    size: int = 0  # receiving a requested file: its size, known only from the accept


@dataclass(frozen=True)
class UseIbb(Message):
    """Move the file in-band (XEP-0261): blocks of ``block_size`` through signalling."""

    sid: str
    block_size: int
    offset: int = 0
    size: int = 0  # receiving a requested file: its size, known only from the accept


def next_seq(seq: int, count: int = 1) -> int:
    """The in-band block number ``count`` blocks after ``seq``: XEP-0047 §2.2 counts
    blocks in 16 bits, wrapping to 0 after 65535."""
    return (seq + count) & 0xFFFF


@dataclass(frozen=True)
class IbbChunk(Message):
    """Consecutive in-band blocks, the first numbered ``seq`` (XEP-0047 §2.2: blocks
    count modulo 65536): sender worker -> signalling, or signalling -> receiver worker.
    A window's worth may travel as one message (see :func:`coalesce`)."""

    sid: str
    seq: int
    blocks: tuple[bytes, ...]


@dataclass(frozen=True)
class IbbAck(Message):
    """Blocks ``seq`` .. ``seq + count - 1`` are through: the peer acknowledged them,
    or the receiver wrote them."""

    sid: str
    seq: int
    count: int = 1


@dataclass(frozen=True)
class TransferDone(Message):
    """All bytes sent or received; the SHA-256 of the whole file, hex, and for a sender
    that announces another algorithm (``transfer.hash``) its digest too."""

    sid: str
    size: int
    sha256: str
    algo: str = "sha-256"
    digest: str = ""


@dataclass(frozen=True)
class CommitFile(Message):
    """Receiver: check the file against the peer's hash (XEP-0300 ``algo``, hex
    ``expected``); a match gets its final name, a mismatch is deleted. No hash
    from the peer (None): kept, unverified."""

    sid: str
    algo: str | None
    expected: str | None


@dataclass(frozen=True)
class FileCommitted(Message):
    sid: str
    path: str | None  # None: deleted (hash mismatch)
    verified: bool


@dataclass(frozen=True)
class TransferProgressEvent(Message):
    """``transfer.progress``, at most ~10 a second per transfer."""

    ts: float
    sid: str
    bytes: int
    size: int


@dataclass(frozen=True)
class TransferCompleteEvent(Message):
    """``transfer.complete``: ``path`` on the receiver, ``name`` on the sender."""

    ts: float
    sid: str
    size: int
    sha256: str
    verified: bool
    path: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class CloseSession(Message):
    """End a session's media or transfer and release every resource it holds."""

    sid: str
    reason: str


@dataclass(frozen=True)
class SessionClosed(Message):
    sid: str


@dataclass(frozen=True)
class ResetSessions(Message):
    """Signalling (re)started: a worker drops every session it still holds."""

    reason: str


@dataclass(frozen=True)
class WorkerFailed(Message):
    """A worker could not do what it was asked for one session: ``reason`` is the
    XEP-0166 condition to end it with, ``detail`` what went wrong, for the user."""

    sid: str
    reason: str
    detail: str = ""


# --- batching ----------------------------------------------------------------

MAX_BATCH_BYTES = 512 * 1024  # in-band bytes in one message, well under MAX_FRAME


def coalesce(first: Message, second: Message) -> Message | None:
    """One message saying what ``first`` then ``second`` say, when they are in-band
    blocks or acknowledgements of one stream that follow each other; else None.

    In-band data crosses the bus once per block each way (blocks, then their
    acknowledgements); a link merges what is queued for the same destination, so a
    window's worth costs one hop instead of one per block."""
    if (isinstance(first, IbbChunk) and isinstance(second, IbbChunk)
            and first.sid == second.sid
            and second.seq == next_seq(first.seq, len(first.blocks))
            and sum(map(len, first.blocks + second.blocks)) <= MAX_BATCH_BYTES):
        return IbbChunk(first.sid, first.seq, first.blocks + second.blocks)
    if (isinstance(first, IbbAck) and isinstance(second, IbbAck) and first.sid == second.sid
            and second.seq == next_seq(first.seq, first.count)):
        return IbbAck(first.sid, first.seq, first.count + second.count)
    return None


# --- codec -------------------------------------------------------------------


def encode(message: Message) -> bytes:
    """The one encoder of the bus."""
    fields = {f.name: _to_wire(getattr(message, f.name)) for f in dataclasses.fields(message)}
    packed: bytes = msgpack.packb(
        {"v": SCHEMA_VERSION, "t": type(message).__name__, "f": fields}, use_bin_type=True
    )
    return packed


def decode(frame: bytes) -> Message:
    """The one decoder of the bus: a typed message or :class:`MessageError`."""
    try:
        raw = msgpack.unpackb(frame, raw=False, strict_map_key=True, **_UNPACK_LIMITS)
    except Exception as exc:
        raise MessageError(f"not msgpack: {exc}") from None
    if not isinstance(raw, dict):
        raise MessageError("frame is not a map")
    version = raw.get("v")
    if version != SCHEMA_VERSION:
        raise UnsupportedVersion(f"schema version {version!r}, expected {SCHEMA_VERSION}")
    name = raw.get("t")
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None or cls in (Message, Command):
        raise MessageError(f"unknown message type {name!r}")
    fields = raw.get("f")
    if not isinstance(fields, dict):
        raise MessageError(f"{name}: fields are not a map")
    message: Message = _build(cls, fields)
    return message


def _to_wire(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_to_wire(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def _build(cls: type[Any], fields: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(fields) - set(known)
    if unknown:
        raise MessageError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, field in known.items():
        if name not in fields:
            no_default = (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            )
            if no_default:
                raise MessageError(f"{cls.__name__}: missing field {name!r}")
            continue
        kwargs[name] = _check(hints[name], fields[name], f"{cls.__name__}.{name}")
    return cls(**kwargs)


def _check(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        errors = []
        for option in typing.get_args(hint):
            try:
                return _check(option, value, where)
            except MessageError as exc:
                errors.append(str(exc))
        raise MessageError(f"{where}: {value!r} matches none of {hint}")
    if hint is type(None):
        if value is None:
            return None
        raise MessageError(f"{where}: expected None")
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, list | tuple):
            raise MessageError(f"{where}: expected a list")
        return tuple(_check(item, v, f"{where}[]") for v in value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            raise MessageError(f"{where}: {value!r} is not a {hint.__name__}") from None
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise MessageError(f"{where}: expected a number")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise MessageError(f"{where}: expected an integer")
    if hint in (str, bool, bytes):
        if type(value) is hint:
            return value
        raise MessageError(f"{where}: expected {hint.__name__}")
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise MessageError(f"{where}: expected a map")
        return _build(hint, value)
    raise MessageError(f"{where}: unsupported field type {hint}")


def message_types() -> tuple[type[Message], ...]:
    """Every concrete message class (for tests and docs)."""
    return tuple(c for c in _REGISTRY.values() if c not in (Message, Command))
