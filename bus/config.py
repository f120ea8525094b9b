"""The agent's configuration: one TOML file that every process of the agent reads.

docs/control.md fixes the minimum keys and the override rule: every key can be
replaced by the environment variable ``PYJINGLE_<SECTION>_<KEY>``. Whatever is
wrong is reported as :class:`ConfigError` naming the key, on one line, so the
processes can print it and exit 2.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bus.curve import CurveKeyError, load_keys, needs_keys

ENV_PREFIX = "PYJINGLE_"
ACCEPT_POLICIES = ("none", "roster", "all")
REVEAL_POLICIES = ("never", "roster", "always")
FROM_POLICIES = ("anyone", "contacts")
APPROVE_POLICIES = ("none", "all")
TLS_MODES = ("required", "optional", "off")
ENCRYPTION_MODES = ("required", "optional", "off")


KNOWN_KEYS: dict[str, frozenset[str]] = {
    "account": frozenset({"jid", "password", "password_file", "server", "port", "tls",
                          "resource"}),
    "control": frozenset({"commands", "events", "curve_keys"}),
    "bus": frozenset({"endpoint", "heartbeat_interval", "heartbeat_timeout", "spawn",
                      "curve_keys"}),
    "audio": frozenset({"input", "output"}),
    "transfer": frozenset({"download_dir", "max_rate", "transports", "shared_dir",
                           "max_size", "idle_timeout", "hash", "workers"}),
    "policy": frozenset({"auto_accept_calls", "auto_accept_files", "reveal_ip_before_accept",
                         "relay_only", "relay_only_contacts", "calls_from", "files_from"}),
    "contacts": frozenset({"approve"}),
    "jingle": frozenset({"ring_timeout", "iq_timeout", "message_initiation"}),
    "ice": frozenset({"connect_timeout", "stun_server", "turn_server", "turn_username",
                      "turn_password", "turn_transport", "turns_server"}),
    "media": frozenset({"encryption", "workers", "advertised_address"}),
    "log": frozenset({"level", "timestamps"}),
}


class ConfigError(Exception):
    """A configuration value is missing or wrong; the message names the key."""


@dataclass(frozen=True)
class AccountConfig:
    jid: str
    password: str
    server: str | None
    port: int
    tls: str
    resource: str


@dataclass(frozen=True)
class ControlConfig:
    commands: str
    events: str
    curve_keys: str | None = None  # CURVE key folder (bus.curve): required for tcp://


@dataclass(frozen=True)
class BusConfig:
    """Internal endpoints and liveness settings (supervisor <-> processes)."""

    endpoint: str
    heartbeat_interval: float
    heartbeat_timeout: float
    spawn: tuple[str, ...]
    curve_keys: str | None = None  # CURVE key folder (bus.curve): required for tcp://


@dataclass(frozen=True)
class AudioConfig:
    input: str
    output: str


@dataclass(frozen=True)
class TransferConfig:
    download_dir: str
    max_rate: int  # bytes per second a transfer may send; 0 = unlimited
    transports: tuple[str, ...]  # in order of preference: s5b (XEP-0260), ibb (XEP-0261)
    shared_dir: str | None  # files contacts may request (XEP-0234 §5); None: none
    max_size: int  # bytes; larger offers are refused on arrival; 0 = no limit
    idle_timeout: float = 120.0  # seconds an accepted transfer may move no byte; 0 = never
    hash: str = "sha-256"  # the XEP-0300 algorithm a sender announces in its checksum
    workers: int = 1  # transfer worker processes (a pool: transfers go to the least busy)


@dataclass(frozen=True)
class PolicyConfig:
    auto_accept_calls: str
    auto_accept_files: str
    reveal_ip_before_accept: str
    relay_only: bool
    relay_only_contacts: tuple[str, ...]  # bare JIDs to hide our addresses from
    calls_from: str = "anyone"  # or "contacts": a stranger's call is refused unseen
    files_from: str = "anyone"  # the same for file offers and requests

    def accepts_from(self, policy: str, peer_in_roster: bool) -> bool:
        """``calls_from``/``files_from``: may this peer reach the user at all?"""
        return policy == "anyone" or peer_in_roster

    def auto_accepts(self, policy: str, peer_in_roster: bool) -> bool:
        """Whether ``policy`` (``auto_accept_calls`` or ``_files``) accepts this peer."""
        return policy == "all" or (policy == "roster" and peer_in_roster)

    def reveals_early(self, peer_in_roster: bool) -> bool:
        """``reveal_ip_before_accept``: may candidates go out before the user accepts?
        (libjingle's behaviour, faster to connect, but it tells any caller where we are.)"""
        return self.reveal_ip_before_accept == "always" or (
            self.reveal_ip_before_accept == "roster" and peer_in_roster)

    def relay_only_for(self, peer: str) -> bool:
        """Relay-only for this peer (full or bare JID)?"""
        return self.relay_only or peer.split("/", 1)[0] in self.relay_only_contacts


@dataclass(frozen=True)
class ContactsConfig:
    """``approve``: ``none`` (default: every subscription request waits for the user)
    or ``all`` (approve and subscribe back automatically)."""

    approve: str = "none"


@dataclass(frozen=True)
class JingleConfig:
    """Timeouts of the Jingle core, in seconds."""

    ring_timeout: float
    iq_timeout: float
    message_initiation: bool = True  # XEP-0353 propose/proceed before calls, when supported


@dataclass(frozen=True)
class IceConfig:
    """ICE in the media worker. aioice's failing checks can run for a minute: bound them."""

    connect_timeout: float
    stun_server: tuple[str, int] | None
    turn_server: tuple[str, int] | None
    turn_username: str | None
    turn_password: str | None
    turn_transport: str  # udp, tcp or tls
    turns_server: tuple[str, int] | None = None  # TURN over TLS tried when the others fail


@dataclass(frozen=True)
class MediaConfig:
    """``encryption``: DTLS-SRTP (XEP-0320) ``required`` (default: no plain call ever),
    ``optional`` (plain RTP with a peer that offers no fingerprint) or ``off``."""

    encryption: str = "required"
    workers: int = 1  # media worker processes (a pool: calls are placed on the least busy)
    advertised_address: str | None = None  # this host's public IPv4 behind a 1:1 NAT


@dataclass(frozen=True)
class AgentConfig:
    account: AccountConfig
    control: ControlConfig
    bus: BusConfig
    audio: AudioConfig
    transfer: TransferConfig
    policy: PolicyConfig
    jingle: JingleConfig
    ice: IceConfig
    log_level: str
    source: str
    media: MediaConfig = MediaConfig()
    contacts: ContactsConfig = ContactsConfig()
    log_timestamps: bool | None = None  # None: yes, unless journald adds its own

    @property
    def bare_jid(self) -> str:
        return self.account.jid.split("/", 1)[0]


def runtime_dir(bare_jid: str) -> Path:
    """Where the default ipc:// endpoints live, created with mode 0700."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    root = Path(base) / "pyjingle" if base else Path(f"/tmp/pyjingle-{os.getuid()}")
    path = root / bare_jid
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    for p in (root, path):
        if p.stat().st_uid == os.getuid():
            p.chmod(0o700)
    return path


class _Reader:
    """Reads ``section.key`` from the TOML table or its environment override."""

    def __init__(self, table: Mapping[str, Any], env: Mapping[str, str]) -> None:
        self._table = table
        self._env = env

    def raw(self, section: str, key: str) -> tuple[Any, bool]:
        env_name = f"{ENV_PREFIX}{section.upper()}_{key.upper()}"
        if env_name in self._env:
            return self._env[env_name], True
        sect = self._table.get(section, {})
        if not isinstance(sect, Mapping):
            raise ConfigError(f"[{section}] must be a table")
        if key in sect:
            return sect[key], False
        return None, False

    def text(self, section: str, key: str, default: str | None = None, *,
            choices: tuple[str, ...] | None = None) -> str:
        value, _ = self.raw(section, key)
        if value is None:
            if default is None:
                raise ConfigError(f"{section}.{key}: required but missing")
            value = default
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{section}.{key}: expected a non-empty string, got {value!r}")
        if choices and value not in choices:
            raise ConfigError(f"{section}.{key}: {value!r} is not one of {', '.join(choices)}")
        return value

    def opt_text(self, section: str, key: str) -> str | None:
        value, _ = self.raw(section, key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{section}.{key}: expected a string, got {value!r}")
        return value

    def integer(self, section: str, key: str, default: int, lo: int, hi: int) -> int:
        value, from_env = self.raw(section, key)
        if value is None:
            return default
        if from_env:
            try:
                value = int(value)
            except ValueError:
                raise ConfigError(f"{section}.{key}: expected an integer, got {value!r}") from None
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise ConfigError(f"{section}.{key}: expected an integer in {lo}..{hi}, got {value!r}")
        return value

    def number(self, section: str, key: str, default: float, lo: float, hi: float) -> float:
        value, from_env = self.raw(section, key)
        if value is None:
            return default
        if from_env:
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{section}.{key}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise ConfigError(f"{section}.{key}: expected a number in {lo}..{hi}, got {value!r}")
        return float(value)

    def flag(self, section: str, key: str, default: bool) -> bool:
        value, from_env = self.raw(section, key)
        if value is None:
            return default
        if from_env and isinstance(value, str):
            lowered = value.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
        if not isinstance(value, bool):
            raise ConfigError(f"{section}.{key}: expected true or false, got {value!r}")
        return value

    def jids(self, section: str, key: str) -> tuple[str, ...]:
        value, from_env = self.raw(section, key)
        if value is None:
            return ()
        if from_env and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{section}.{key}: expected a list of JIDs, got {value!r}")
        for jid in value:
            _check_jid(f"{section}.{key}", jid)
        return tuple(v.split("/", 1)[0] for v in value)

    def names(self, section: str, key: str, default: tuple[str, ...],
              allowed: tuple[str, ...]) -> tuple[str, ...]:
        value, from_env = self.raw(section, key)
        if value is None:
            return default
        if from_env and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{section}.{key}: expected a list of names, got {value!r}")
        bad = [v for v in value if v not in allowed]
        if bad:
            raise ConfigError(f"{section}.{key}: unknown {bad[0]!r}, use {', '.join(allowed)}")
        return tuple(value)


def _check_endpoint(key: str, value: str) -> str:
    if not value.startswith(("ipc://", "tcp://", "inproc://")):
        raise ConfigError(f"{key}: {value!r} is not a ZeroMQ endpoint (ipc://, tcp://)")
    return value


def _curve_keys(section: str, endpoints: tuple[tuple[str, str], ...],
                folder: str | None) -> str | None:
    """A tcp:// endpoint is refused without CURVE keys; a key folder must be whole."""
    if folder is None:
        for key, endpoint in endpoints:
            if needs_keys(endpoint):
                raise ConfigError(f"{key}: a tcp:// endpoint needs {section}.curve_keys "
                                  f"(CURVE keys: make them with pyjingle-keys FOLDER)")
        return None
    folder = os.path.expanduser(folder)
    try:
        keys = load_keys(folder)
    except CurveKeyError as exc:
        raise ConfigError(f"{section}.curve_keys: {exc}") from None
    if keys.server_secret is None and keys.client_secret is None:
        raise ConfigError(f"{section}.curve_keys: {folder} holds no secret key")
    return folder


def _host_port(key: str, value: str | None) -> tuple[str, int] | None:
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{key}: {value!r} is not host:port")
    return host.strip("[]"), int(port)


def _check_jid(key: str, jid: str) -> None:
    bare = jid.split("/", 1)[0]
    local, at, domain = bare.partition("@")
    if not at or not local or not domain or " " in jid:
        raise ConfigError(f"{key}: {jid!r} is not a JID like user@example.com")


def _password(r: _Reader) -> str:
    """``account.password``, or the contents of ``account.password_file`` (which may
    name ``$CREDENTIALS_DIRECTORY``: systemd's LoadCredential=), so the config itself
    can be world-readable and hold no secret."""
    if r.raw("account", "password")[0] is not None or r.raw("account", "password_file")[0] is None:
        return r.text("account", "password")
    named = r.text("account", "password_file")
    path = os.path.expanduser(os.path.expandvars(named))
    try:
        with open(path, encoding="utf-8") as fh:
            secret = fh.read().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"account.password_file: {named}: {exc.strerror or exc}") from None
    if not secret:
        raise ConfigError(f"account.password_file: {named} is empty")
    return secret


def _check_known(table: Mapping[str, Any]) -> None:
    """A misspelt key would silently fall back to its default: refuse it instead."""
    for section, keys in table.items():
        known = KNOWN_KEYS.get(section)
        if known is None:
            raise ConfigError(f"[{section}]: unknown section")
        if not isinstance(keys, Mapping):
            raise ConfigError(f"[{section}] must be a table")
        for key in keys:
            if key not in known:
                raise ConfigError(f"{section}.{key}: unknown key")


def read_table(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The TOML file as a table, or :class:`ConfigError` saying why it cannot be read."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: not found") from None
    except OSError as exc:
        raise ConfigError(f"config file {path}: not readable ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML ({exc})") from None


def load_config(path: str | os.PathLike[str] | None,
                env: Mapping[str, str] | None = None) -> AgentConfig:
    """Read, override from the environment, validate. Raises :class:`ConfigError`."""
    env = os.environ if env is None else env
    table = read_table(path) if path is not None else {}
    _check_known(table)
    return _build(table, env, "environment" if path is None else str(path))


def _ipv4(key: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ConfigError(f"{key}: expected an IPv4 address, got {value!r}") from None


def _workers(r: _Reader, section: str) -> int:
    """``<section>.workers``: 1 to 64 processes, or "auto": one per core."""
    raw, _ = r.raw(section, "workers")
    if raw == "auto":
        return max(1, os.cpu_count() or 1)
    return r.integer(section, "workers", 1, 1, 64)


def _build(table: Mapping[str, Any], env: Mapping[str, str], source: str) -> AgentConfig:
    r = _Reader(table, env)

    jid = r.text("account", "jid")
    _check_jid("account.jid", jid)
    bare, _, resource = jid.partition("/")
    account = AccountConfig(
        jid=bare,
        password=_password(r),
        server=r.opt_text("account", "server"),
        port=r.integer("account", "port", 5222, 1, 65535),
        tls=r.text("account", "tls", "required", choices=TLS_MODES),
        resource=resource or r.text("account", "resource", "pyjingle"),
    )
    if account.tls == "off" and (account.server or bare.split("@", 1)[1]) not in (
        "127.0.0.1", "::1", "localhost"
    ):
        raise ConfigError("account.tls: 'off' is allowed only for a server on loopback")

    needs_default = any(
        r.raw("control", k)[0] is None for k in ("commands", "events")
    ) or r.raw("bus", "endpoint")[0] is None
    folder = runtime_dir(bare) if needs_default else None
    commands = _check_endpoint(
        "control.commands", r.text("control", "commands", f"ipc://{folder}/commands"))
    events = _check_endpoint(
        "control.events", r.text("control", "events", f"ipc://{folder}/events"))
    control = ControlConfig(commands=commands, events=events, curve_keys=_curve_keys(
        "control", (("control.commands", commands), ("control.events", events)),
        r.opt_text("control", "curve_keys")))
    interval = r.number("bus", "heartbeat_interval", 0.5, 0.05, 60.0)
    bus_endpoint = _check_endpoint("bus.endpoint",
                                   r.text("bus", "endpoint", f"ipc://{folder}/bus"))
    bus = BusConfig(
        endpoint=bus_endpoint,
        heartbeat_interval=interval,
        heartbeat_timeout=r.number("bus", "heartbeat_timeout", 3.0, interval * 2, 600.0),
        spawn=r.names("bus", "spawn", ("signalling", "media", "transfer"),
                      ("signalling", "media", "transfer")),
        curve_keys=_curve_keys("bus", (("bus.endpoint", bus_endpoint),),
                               r.opt_text("bus", "curve_keys")),
    )
    audio = AudioConfig(input=r.text("audio", "input", "default"),
                        output=r.text("audio", "output", "default"))
    for key, value, ok in (("audio.input", audio.input,
                            ("default", "silence", "tone:", "file:", "loop:")),
                           ("audio.output", audio.output, ("default", "null", "file:"))):
        if not any(value == o or (o.endswith(":") and value.startswith(o)) for o in ok):
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(ok)}")
    transfer = TransferConfig(
        download_dir=os.path.expanduser(
            r.text("transfer", "download_dir", "~/Downloads/pyjingle")
        ),
        max_rate=r.integer("transfer", "max_rate", 0, 0, 1 << 40),
        transports=r.names("transfer", "transports", ("s5b", "ibb"), ("s5b", "ibb")),
        shared_dir=(os.path.expanduser(shared) if (shared := r.opt_text("transfer", "shared_dir"))
                    else None),
        max_size=r.integer("transfer", "max_size", 0, 0, 1 << 50),
        idle_timeout=r.number("transfer", "idle_timeout", 120.0, 0.0, 86400.0),
        hash=r.text("transfer", "hash", "sha-256",
                    choices=("sha-256", "sha3-256", "blake2b-256")),
        workers=_workers(r, "transfer"),
    )
    if not transfer.transports:
        raise ConfigError("transfer.transports: needs at least one of s5b, ibb")
    policy = PolicyConfig(
        auto_accept_calls=r.text("policy", "auto_accept_calls", "none", choices=ACCEPT_POLICIES),
        auto_accept_files=r.text("policy", "auto_accept_files", "none", choices=ACCEPT_POLICIES),
        reveal_ip_before_accept=r.text(
            "policy", "reveal_ip_before_accept", "never", choices=REVEAL_POLICIES
        ),
        relay_only=r.flag("policy", "relay_only", False),
        relay_only_contacts=r.jids("policy", "relay_only_contacts"),
        calls_from=r.text("policy", "calls_from", "anyone", choices=FROM_POLICIES),
        files_from=r.text("policy", "files_from", "anyone", choices=FROM_POLICIES),
    )
    jingle = JingleConfig(
        ring_timeout=r.number("jingle", "ring_timeout", 60.0, 1.0, 3600.0),
        iq_timeout=r.number("jingle", "iq_timeout", 30.0, 1.0, 600.0),
        message_initiation=r.flag("jingle", "message_initiation", True),
    )
    media_workers = _workers(r, "media")
    turn_server = _host_port("ice.turn_server", r.opt_text("ice", "turn_server"))
    ice = IceConfig(
        connect_timeout=r.number("ice", "connect_timeout", 20.0, 1.0, 300.0),
        stun_server=_host_port("ice.stun_server", r.opt_text("ice", "stun_server")),
        turn_server=turn_server,
        turn_username=r.opt_text("ice", "turn_username"),
        turn_password=r.opt_text("ice", "turn_password"),
        turn_transport=r.text("ice", "turn_transport", "udp", choices=("udp", "tcp", "tls")),
        turns_server=_host_port("ice.turns_server", r.opt_text("ice", "turns_server")),
    )
    if turn_server and not (ice.turn_username and ice.turn_password):
        raise ConfigError("ice.turn_username: a TURN server needs a username and password")
    log_level = r.text("log", "level", "info", choices=("debug", "info", "warning", "error"))
    log_timestamps = (r.flag("log", "timestamps", True)
                      if r.raw("log", "timestamps")[0] is not None else None)
    return AgentConfig(account=account, control=control, bus=bus, audio=audio,
                       transfer=transfer, policy=policy, jingle=jingle, ice=ice,
                       log_level=log_level, source=source,
                       media=MediaConfig(encryption=r.text("media", "encryption", "required",
                                                           choices=ENCRYPTION_MODES),
                                         workers=media_workers,
                                         advertised_address=_ipv4(
                                             "media.advertised_address",
                                             r.opt_text("media", "advertised_address"))),
                       contacts=ContactsConfig(approve=r.text("contacts", "approve", "none",
                                                              choices=APPROVE_POLICIES)),
                       log_timestamps=log_timestamps)


# Environment variables of ours that are not configuration keys.
OTHER_VARIABLES = frozenset({"PYJINGLE_SUPERVISED", "PYJINGLE_MEDIA_PRIORITY",
                             "PYJINGLE_MEDIA_TRACE", "PYJINGLE_AGENT"})
# What stands in for a required value that is wrong, so the check goes on past it.
_PLACEHOLDERS = {("account", "jid"): "placeholder@localhost", ("account", "password"): "x"}


def check_config(path: str | os.PathLike[str] | None,
                 env: Mapping[str, str] | None = None) -> list[str]:
    """Every problem of a configuration at once (``pyjingle-agent --check``), one line
    each naming the key or environment variable; misspelt names get a suggestion."""
    environment = dict(os.environ if env is None else env)
    try:
        table = read_table(path) if path is not None else {}
    except ConfigError as exc:
        return [str(exc)]
    problems = _unknown_names(table, environment)
    for _ in range(100):
        try:
            _build(table, environment, str(path))
            break
        except ConfigError as exc:
            message = str(exc)
            key = message.split(":", 1)[0]
            section, _, name = key.partition(".")
            variable = f"{ENV_PREFIX}{section.upper()}_{name.upper()}"
            problems.append(message + (f" (from {variable})" if variable in environment
                                       else ""))
            if not _drop(table, environment, section, name, variable):
                break
    return problems


def _unknown_names(table: dict[str, Any], env: dict[str, str]) -> list[str]:
    problems = []
    for section in list(table):
        keys = table[section]
        if section not in KNOWN_KEYS:
            problems.append(f"[{section}]: unknown section{_did_you_mean(section, KNOWN_KEYS)}")
            del table[section]
        elif not isinstance(keys, dict):
            problems.append(f"[{section}] must be a table")
            del table[section]
        else:
            for key in list(keys):
                if key not in KNOWN_KEYS[section]:
                    problems.append(f"{section}.{key}: unknown key"
                                    f"{_did_you_mean(key, KNOWN_KEYS[section])}")
                    del keys[key]
    variables = {f"{ENV_PREFIX}{s.upper()}_{k.upper()}" for s, ks in KNOWN_KEYS.items()
                 for k in ks}
    for name in sorted(env):
        if name.startswith(ENV_PREFIX) and name not in variables | OTHER_VARIABLES:
            problems.append(f"{name}: not a pyjingle variable"
                            f"{_did_you_mean(name, variables | OTHER_VARIABLES)}")
            del env[name]
    return problems


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _drop(table: dict[str, Any], env: dict[str, str], section: str, name: str,
          variable: str) -> bool:
    """Take a wrong value out (its default, or a placeholder, stands in); False when
    there was nothing to take, so the check cannot go further."""
    changed = env.pop(variable, None) is not None
    values = table.get(section)
    if isinstance(values, dict) and name in values:
        del values[name]
        changed = True
    placeholder = _PLACEHOLDERS.get((section, name))
    if placeholder is not None and changed:
        table.setdefault(section, {})[name] = placeholder
    elif placeholder is not None and table.get(section, {}).get(name) != placeholder:
        table.setdefault(section, {})[name] = placeholder  # it was missing
        changed = True
    return changed


# Where a systemd unit's agent (deploy/systemd/pyjingle@.service) keeps its sockets.
UNIT_RUNTIME = Path("/run/pyjingle")


@dataclass(frozen=True)
class ControlEndpoints:
    """What a client needs to reach an agent, and nothing else (never the password)."""

    commands: str
    events: str
    curve_keys: str | None = None


def control_endpoints(agent: str | None, env: Mapping[str, str] | None = None
                      ) -> ControlEndpoints:
    """The control endpoints of ``agent``: a config file (only its [control] table, and
    account.jid when the endpoints are the defaults), or the name of a systemd unit
    instance (``/run/pyjingle/<name>/``); ``PYJINGLE_AGENT`` when None."""
    env = os.environ if env is None else env
    agent = agent or env.get("PYJINGLE_AGENT")
    if agent is None:
        raise ConfigError("no agent given: use --agent CONFIG|NAME, PYJINGLE_AGENT, or "
                          "--control and --events")
    if not os.path.exists(agent) and "/" not in agent and not agent.endswith(".toml"):
        folder = UNIT_RUNTIME / agent
        return ControlEndpoints(f"ipc://{folder}/commands", f"ipc://{folder}/events")
    r = _Reader(read_table(agent), env)
    commands, events = r.opt_text("control", "commands"), r.opt_text("control", "events")
    if commands is None or events is None:
        jid = r.text("account", "jid")
        _check_jid("account.jid", jid)
        folder = runtime_dir(jid.split("/", 1)[0])
        commands = commands or f"ipc://{folder}/commands"
        events = events or f"ipc://{folder}/events"
    keys = r.opt_text("control", "curve_keys")
    return ControlEndpoints(_check_endpoint("control.commands", commands),
                            _check_endpoint("control.events", events),
                            os.path.expanduser(keys) if keys else None)
