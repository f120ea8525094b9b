"""ZeroMQ CURVE for tcp:// endpoints: the control socket and the bus, authenticated.

An ipc:// endpoint is a file in a 0700 folder: the kernel decides who may
connect. A tcp:// endpoint can be reached by anyone who can route to it, so
the agent refuses one unless CURVE keys are configured (``control.curve_keys``,
``bus.curve_keys``): a folder made by ``pyjingle-keys FOLDER`` that holds

- ``server.key_secret`` / ``server.key``: the agent's key pair (it binds);
- ``client.key_secret`` / ``client.key``: a key pair for the tools or processes
  that connect (give ``client.key_secret`` and ``server.key`` to them);
- ``clients/``: the public keys allowed to connect (``client.key`` is put there;
  add more ``*.key`` files for more clients).

Traffic is encrypted (CurveZMQ, RFC 26) and ZAP rejects every client key that is
not in ``clients/``, so a peer with the wrong key pair, or that expects another
server key, gets no connection at all.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.auth

SERVER = "server"
CLIENT = "client"
CLIENTS = "clients"


class CurveKeyError(Exception):
    """A key folder is incomplete or unreadable (the message says which file)."""


@dataclass(frozen=True)
class CurveKeys:
    """One key folder, loaded. The secret parts are None where the folder does not
    hold them (a client's copy needs only ``server.key`` and ``client.key_secret``)."""

    folder: Path
    server_public: bytes
    server_secret: bytes | None
    client_public: bytes | None
    client_secret: bytes | None

    @property
    def allowed(self) -> Path:
        return self.folder / CLIENTS


def make_keys(folder: str | os.PathLike[str]) -> Path:
    """Create a key folder (mode 0700, secrets 0600); existing keys are kept."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    for name in (SERVER, CLIENT):
        if not (path / f"{name}.key_secret").exists():
            zmq.auth.create_certificates(str(path), name)
        (path / f"{name}.key_secret").chmod(0o600)
    allowed = path / CLIENTS
    allowed.mkdir(exist_ok=True, mode=0o700)
    shutil.copyfile(path / f"{CLIENT}.key", allowed / f"{CLIENT}.key")
    return path


def load_keys(folder: str | os.PathLike[str]) -> CurveKeys:
    """Read a key folder; :class:`CurveKeyError` names the file that is missing or bad."""
    path = Path(folder)
    server_public, server_secret = _pair(path, SERVER, need_secret=False)
    client_public, client_secret = (None, None)
    if (path / f"{CLIENT}.key_secret").exists():
        client_public, client_secret = _pair(path, CLIENT, need_secret=True)
    return CurveKeys(path, server_public, server_secret, client_public, client_secret)


def _pair(folder: Path, name: str, need_secret: bool) -> tuple[bytes, bytes | None]:
    secret_file = folder / f"{name}.key_secret"
    public_file = folder / f"{name}.key"
    try:
        if secret_file.exists():
            public, secret = zmq.auth.load_certificate(str(secret_file))
            return public, secret
        if need_secret:
            raise CurveKeyError(f"{secret_file}: missing")
        public, _ = zmq.auth.load_certificate(str(public_file))
        return public, None
    except (OSError, ValueError) as exc:
        raise CurveKeyError(f"{public_file if not secret_file.exists() else secret_file}: "
                        f"{exc}") from None


def secure_server(sock: zmq.Socket[Any], keys: CurveKeys, domain: str) -> None:
    """Make a bound socket a CURVE server checked by ZAP under ``domain``."""
    if keys.server_secret is None:
        raise CurveKeyError(f"{keys.folder / (SERVER + '.key_secret')}: missing")
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.server_public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.server_secret)
    sock.setsockopt(zmq.ZAP_DOMAIN, domain.encode())


def secure_client(sock: zmq.Socket[Any], keys: CurveKeys) -> None:
    """Make a connecting socket a CURVE client of the folder's server."""
    if keys.client_secret is None or keys.client_public is None:
        raise CurveKeyError(f"{keys.folder / (CLIENT + '.key_secret')}: missing")
    sock.setsockopt(zmq.CURVE_SERVERKEY, keys.server_public)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.client_public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.client_secret)


def needs_keys(endpoint: str) -> bool:
    """Only ipc:// and inproc:// are guarded by the operating system."""
    return endpoint.startswith("tcp://")


def main(argv: list[str] | None = None) -> int:
    """``pyjingle-keys FOLDER``: make (or complete) a CURVE key folder."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="pyjingle-keys",
        description="make the CURVE keys for a tcp:// control or bus endpoint")
    parser.add_argument("folder")
    args = parser.parse_args(argv)
    path = make_keys(args.folder)
    print(f"{path}: server.key_secret (the agent), client.key_secret + server.key "
          f"(give them to each client), clients/ (public keys allowed to connect)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
