"""Dino (Debian ``dino-im`` 0.4) as a headless test peer in a network namespace.

What it takes to run a desktop XMPP client without a person, learnt on these
machines:

- an X server (Xvfb), a session D-Bus (AT-SPI, through which the tests press
  Dino's buttons, is activated on it) and PulseAudio with null sinks: Dino's
  speaker is recorded from a null sink's monitor; its microphone is a second
  null sink remapped as a source, fed a tone in real time;
- STARTTLS with a certificate it trusts: the test CA is bind-mounted over the
  CA bundle inside the namespace's private mount namespace (the machine's trust
  store is not touched); the same for ``/etc/hosts`` (the test domain) and
  ``/etc/resolv.conf`` (no DNS: SRV and STUN lookups fail at once);
- ``GSK_RENDERER=cairo``: GTK4's default renderer on Xvfb starves Dino's file
  reads;
- an account: Dino's SQLite database is created by a first start, then an
  account row and one conversation row per contact are written (Dino 0.4
  drops a file offer from a JID it has no conversation with).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

DRIVER = Path(__file__).with_name("dino_atspi.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # the one python3-pyatspi belongs to
EXECUTABLES = ("dino-im", "Xvfb", "dbus-daemon", "pulseaudio", "pacat", "parecord", "xdotool",
               "gdbus")

PULSE_CONFIG = """\
load-module module-native-protocol-unix auth-anonymous=1 socket={run}/pulse.sock
load-module module-null-sink sink_name=speaker rate=48000 channels=1
load-module module-null-sink sink_name=micfeed rate=48000 channels=1
load-module module-remap-source source_name=mic master=micfeed.monitor
set-default-sink speaker
set-default-source mic
"""

# Start everything of Dino's inside the namespace; the mounts are private to this
# shell and its children (ip netns exec gives each command its own mount namespace).
LAUNCH = """\
set -e
mount --bind "$PJ_CA" /etc/ssl/certs/ca-certificates.crt
mount --bind "$PJ_HOSTS" /etc/hosts
mount --bind "$PJ_RESOLV" /etc/resolv.conf
Xvfb "$DISPLAY" -screen 0 1280x900x24 -nolisten tcp >"$PJ_RUN/xvfb.log" 2>&1 &
dbus-daemon --session --nofork --address="$DBUS_SESSION_BUS_ADDRESS" \
    >"$PJ_RUN/dbus.log" 2>&1 &
pulseaudio -n -F "$PJ_RUN/pulse.pa" --daemonize=no --exit-idle-time=-1 \
    --use-pid-file=no >"$PJ_RUN/pulse.log" 2>&1 &
for i in $(seq 100); do
    [ -S "$PJ_RUN/bus" ] && [ -S "$PJ_RUN/pulse.sock" ] \
        && [ -e "/tmp/.X11-unix/X${DISPLAY#:}" ] && break
    sleep 0.05
done
exec "$@"
"""


def missing() -> str | None:
    """None when Dino and its helpers are installed, else what is missing."""
    if sys.platform != "linux":
        return "Dino runs here on Linux only"
    absent = [name for name in EXECUTABLES if shutil.which(name) is None]
    if absent:
        return f"not installed: {', '.join(absent)} (scripts/setup.sh installs them)"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import pyatspi"], capture_output=True)
    if probe.returncode != 0:
        return "python3-pyatspi is not installed (scripts/setup.sh installs it)"
    return None


class Dino:
    """One Dino process tree for one account, driven through AT-SPI."""

    def __init__(self, prefix: tuple[str, ...], folder: Path, jid: str, password: str,
                 server_ip: str, ca_file: Path, display: int) -> None:
        self.prefix = prefix
        self.folder = folder
        self.jid = jid
        self.password = password
        self.domain = jid.split("@", 1)[1]
        self.home = folder / "home"
        self.run_dir = folder / "run"
        self.display = display
        self.server_ip = server_ip
        self.ca_file = ca_file
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = folder / "dino.log"
        self._feeders: list[subprocess.Popen[bytes]] = []
        self.conversations: dict[str, int] = {}  # contact's bare JID -> conversation id

    # -- set-up --------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        keep = {k: os.environ[k] for k in ("PATH", "LANG") if k in os.environ}
        return keep | {
            "HOME": str(self.home),
            "XDG_RUNTIME_DIR": str(self.run_dir),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_DATA_HOME": str(self.home / ".local/share"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "DISPLAY": f":{self.display}",
            "DBUS_SESSION_BUS_ADDRESS": f"unix:path={self.run_dir}/bus",
            "PULSE_SERVER": f"unix:{self.run_dir}/pulse.sock",
            "GSK_RENDERER": "cairo",
            "NO_AT_BRIDGE": "0",
            "GTK_A11Y": "atspi",
            "PJ_RUN": str(self.run_dir),
            "PJ_CA": str(self.folder / "ca-bundle.crt"),
            "PJ_HOSTS": str(self.folder / "hosts"),
            "PJ_RESOLV": str(self.folder / "resolv.conf"),
        }

    def prepare(self, contacts: list[str]) -> None:
        """Files for the namespace, then a first start for the database, then the
        account and a conversation with each of ``contacts`` (see :attr:`conversations`)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.run_dir, 0o700)
        self.home.mkdir(parents=True, exist_ok=True)
        bundle = Path("/etc/ssl/certs/ca-certificates.crt")
        (self.folder / "ca-bundle.crt").write_bytes(
            (bundle.read_bytes() if bundle.exists() else b"") + self.ca_file.read_bytes())
        (self.folder / "hosts").write_text(
            f"127.0.0.1 localhost\n{self.server_ip} {self.domain} proxy.{self.domain}\n")
        (self.folder / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1\n")
        (self.run_dir / "pulse.pa").write_text(PULSE_CONFIG.format(run=self.run_dir))
        database = self.home / ".local/share/dino/dino.db"
        self.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self._has_schema(database):
            time.sleep(0.2)
        self.stop()
        if not self._has_schema(database):
            raise RuntimeError(f"Dino made no database: {self.log_tail()}")
        with contextlib.closing(sqlite3.connect(database)) as db, db:
            local, _, _ = self.jid.partition("/")
            db.execute("INSERT INTO account (bare_jid, resourcepart, password, alias, enabled)"
                       " VALUES (?, ?, ?, ?, 1)", (local, "dino", self.password, local))
            account = db.execute("SELECT id FROM account WHERE bare_jid = ?",
                                 (local,)).fetchone()[0]
            for contact in contacts:
                db.execute("INSERT OR IGNORE INTO jid (bare_jid) VALUES (?)", (contact,))
                jid_id = db.execute("SELECT id FROM jid WHERE bare_jid = ?",
                                    (contact,)).fetchone()[0]
                cursor = db.execute(
                    "INSERT INTO conversation (account_id, jid_id, active, type, encryption,"
                    " last_active, notification, send_typing, send_marker)"
                    " VALUES (?, ?, 1, 0, 0, ?, 0, 0, 0)", (account, jid_id, int(time.time())))
                self.conversations[contact] = int(cursor.lastrowid or 0)

    @staticmethod
    def _has_schema(database: Path) -> bool:
        if not database.exists():
            return False
        try:
            with contextlib.closing(sqlite3.connect(database)) as db:
                return db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'account'"
                                  ).fetchone()[0] == 1
        except sqlite3.Error:
            return False

    # -- running -------------------------------------------------------------

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*self.prefix, "sh", "-c", LAUNCH, "launch", "dino-im", "--print-xmpp=all"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def stop(self) -> None:
        for feeder in self._feeders:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(feeder.pid, 15)
            feeder.wait()
        self._feeders.clear()
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, 15)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 9)
            self.proc.wait()
        self.proc = None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def ui(self, *args: str, timeout: float = 30.0) -> str:
        """One action of tests/interop/dino_atspi.py (run by the system Python)."""
        done = subprocess.run([*self.prefix, SYSTEM_PYTHON, str(DRIVER), *args],
                              env=self.env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"dino ui {' '.join(args)}: {done.stderr.strip()[-2000:]}")
        return done.stdout

    def microphone(self, hz: float) -> None:
        """Feed Dino's microphone a tone, in real time, until stopped."""
        script = ("import math,sys\n"
                  f"f={hz}\n"
                  "buf=b''.join(int(8000*math.sin(2*math.pi*f*i/48000)).to_bytes(2,'little',"
                  "signed=True) for i in range(48000))\n"
                  "while True: sys.stdout.buffer.write(buf)\n")
        # Restarted if it stops: PulseAudio may not be listening yet when this starts.
        feeder = subprocess.Popen(
            [*self.prefix, "sh", "-c",
             f'while true; do {SYSTEM_PYTHON} -c "$0" | pacat --raw --format=s16le '
             '--rate=48000 --channels=1 -d micfeed; sleep 0.2; done', script],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        self._feeders.append(feeder)

    def record(self, path: Path) -> subprocess.Popen[bytes]:
        """Record Dino's speaker into the WAV ``path`` until the returned process
        is stopped (SIGTERM: parecord finishes the file)."""
        recorder = subprocess.Popen(
            [*self.prefix, "parecord", "-d", "speaker.monitor", "--rate=48000",
             "--channels=1", "--format=s16le", "--file-format=wav", str(path)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        return recorder

    # -- what a person would do ------------------------------------------------

    def _x(self, *args: str) -> None:
        subprocess.run([*self.prefix, "xdotool", *args], env=self.env, check=True,
                       capture_output=True, timeout=30)

    def open_conversation(self, contact: str) -> None:
        """Dino's application action ``open-conversation`` (exported on D-Bus)."""
        subprocess.run([*self.prefix, "gdbus", "call", "--session", "--dest", "im.dino.Dino",
                        "--object-path", "/im/dino/Dino", "--method", "org.gtk.Actions.Activate",
                        "open-conversation", f"[<{self.conversations[contact]}>]", "{}"],
                       env=self.env, check=True, capture_output=True, timeout=30)
        time.sleep(0.5)

    def send_file(self, contact: str, path: Path) -> None:
        """Ctrl+U in the conversation (Dino 0.4 shows no file button), the path typed
        into the file chooser, then Send on the preview."""
        self.open_conversation(contact)
        self._x("mousemove", "600", "300", "key", "ctrl+u")
        self.ui("wait", "Select file", "15")
        self._x("type", "--delay", "10", str(path))
        time.sleep(0.3)
        self._x("key", "Return")
        self.ui("press", "Send", "15")

    def call(self, contact: str) -> None:
        self.open_conversation(contact)
        self.ui("call")

    def received_file(self, name: str) -> Path | None:
        """Where Dino stored a received file (``files/<prefix>_<name>``), if it did."""
        folder = self.home / ".local/share/dino/files"
        found = sorted(folder.glob(f"*_{name}")) if folder.exists() else []
        return found[-1] if found else None
