"""A throwaway coturn (STUN/TURN) on loopback for tests (Debian package ``coturn``).

As measured on our test machines: run ``turnserver -c FILE`` in the foreground; on
loopback it needs ``allow-loopback-peers``; static ``user=`` accounts only work
without ``use-auth-secret``.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from scripts.local_prosody import free_port, stop_process

CONFIG = """\
listening-ip={ip}
listening-port={port}
relay-ip={ip}
min-port={min_port}
max-port={max_port}
realm=pyjingle.test
{auth}
fingerprint
allow-loopback-peers
{tls}
no-dtls
no-cli
no-multicast-peers
pidfile={data}/turnserver.pid
log-file={data}/turnserver.log
simple-log
verbose
"""


@dataclass
class LocalCoturn:
    data: Path
    user: str = "pyjingle"
    password: str = "turn-secret"
    port: int = 0
    auth_secret: str | None = None  # TURN REST credentials (use-auth-secret), as XEP-0215 hands out
    ip: str = "127.0.0.1"  # where it listens and relays from
    prefix: tuple[str, ...] = ()  # e.g. ("ip", "netns", "exec", "ns1") to run it elsewhere
    tls_port: int = 0  # also TURN over TLS here, with a self-signed certificate for ``ip``
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        if shutil.which("turnserver") is None:
            raise RuntimeError("coturn is not installed: run scripts/setup.sh")
        self.data.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        base = 40000 + (self.port % 200) * 100
        config = self.data / "turnserver.conf"
        auth = (f"use-auth-secret\nstatic-auth-secret={self.auth_secret}" if self.auth_secret
                else f"lt-cred-mech\nuser={self.user}:{self.password}")
        tls = "no-tls"
        if self.tls_port:
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                            "-subj", f"/CN={self.ip}", "-addext", f"subjectAltName=IP:{self.ip}",
                            "-keyout", str(self.data / "turn.key"),
                            "-out", str(self.ca_file)], check=True, capture_output=True)
            tls = (f"tls-listening-port={self.tls_port}\ncert={self.ca_file}\n"
                   f"pkey={self.data / 'turn.key'}")
        config.write_text(CONFIG.format(port=self.port, min_port=base, max_port=base + 99,
                                        auth=auth, data=self.data, ip=self.ip, tls=tls))
        self.proc = subprocess.Popen([*self.prefix, "turnserver", "-c", str(config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"turnserver exited with {self.proc.returncode}")
            if self.prefix:
                # Another network namespace: try its TCP listener from in there.
                probe = subprocess.run(
                    [*self.prefix, "bash", "-c", f"exec 3<>/dev/tcp/{self.ip}/{self.port}"],
                    capture_output=True)
                if probe.returncode == 0:
                    return
            else:
                with contextlib.suppress(OSError), socket.create_connection(
                    (self.ip, self.port), 0.2
                ):
                    return
            time.sleep(0.05)
        raise RuntimeError("turnserver did not listen in time")

    @property
    def ca_file(self) -> Path:
        """The self-signed certificate of the TLS listener: what clients must trust."""
        return self.data / "turn.crt"

    def stop(self) -> None:
        stop_process(self.proc)
