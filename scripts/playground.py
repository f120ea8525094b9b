"""The local playground: Prosody plus alice's and bob's agents, and a scripted scene.

Each Procfile line is one subcommand, so plain ``honcho start`` works:
``prosody`` runs a throwaway server, ``agent NAME`` writes NAME's config and
becomes its supervisor (the agent retries until the server listens), and
``scene`` drives both agents through the control socket only, printing the
events, then exits (honcho then stops the rest) unless ``--stay`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

from control.client import ControlClient, ControlFailed, EventWatcher

ROOT = Path(__file__).resolve().parents[1]
DIR = Path(os.environ.get("PLAYGROUND_DIR", ROOT / ".playground")).resolve()
PORT = int(os.environ.get("PLAYGROUND_PORT", "5322"))
USERS = {"alice": "alice-secret", "bob": "bob-secret"}


def config_path(user: str) -> Path:
    return DIR / f"{user}.toml"


def write_config(user: str) -> Path:
    DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = config_path(user)
    path.write_text(
        f'[account]\njid = "{user}@localhost"\npassword = "{USERS[user]}"\n'
        f'server = "127.0.0.1"\nport = {PORT}\ntls = "off"\nresource = "playground"\n\n'
        f'[control]\ncommands = "ipc://{DIR}/{user}.commands"\n'
        f'events = "ipc://{DIR}/{user}.events"\n\n'
        f'[bus]\nendpoint = "ipc://{DIR}/{user}.bus"\n\n'
        f'[audio]\ninput = "tone:{440 if user == "alice" else 660}"\n'
        f'output = "file:{DIR}/{user}-heard.wav"\n\n'
        f'[transfer]\ndownload_dir = "{DIR}/{user}-downloads"\n\n'
        # honcho stamps each line itself
        f'[log]\ntimestamps = false\n'
    )
    return path


def run_prosody() -> None:
    from scripts.local_prosody import LocalProsody

    server = LocalProsody(DIR / "prosody", c2s_port=PORT)
    server.configure(USERS)
    server.start()
    print(f"prosody listening on 127.0.0.1:{PORT} with alice@localhost and bob@localhost",
          flush=True)
    assert server.proc is not None
    import signal

    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    try:
        sys.exit(server.proc.wait())
    except KeyboardInterrupt:
        server.stop()


def run_agent(user: str) -> None:
    path = write_config(user)
    os.execv(sys.executable, [sys.executable, "-m", "supervisor", "--config", str(path)])


def _client(user: str) -> ControlClient:
    return ControlClient(f"ipc://{DIR}/{user}.commands", f"ipc://{DIR}/{user}.events")


def _wait_connected(client: ControlClient, who: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.request("status", timeout=2.0)["connected"]:
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise SystemExit(f"scene: {who}'s agent did not connect within {timeout:.0f} s")


def _printer(user: str, watcher: EventWatcher, stop: threading.Event) -> None:
    while not stop.is_set():
        event = watcher.poll(0.2)
        if event is not None:
            print(f"[{user}] {json.dumps(event, sort_keys=True)}", flush=True)


def run_scene(stay: bool) -> int:
    alice, bob = _client("alice"), _client("bob")
    _wait_connected(alice, "alice")
    _wait_connected(bob, "bob")
    watchers = {u: EventWatcher(f"ipc://{DIR}/{u}.events") for u in USERS}
    stop = threading.Event()
    for user, watcher in watchers.items():
        threading.Thread(target=_printer, args=(user, watcher, stop), daemon=True).start()
    print("scene: alice calls bob@localhost", flush=True)
    deadline = time.monotonic() + 15
    while True:
        try:
            sid = alice.call("bob@localhost")
            break
        except ControlFailed as exc:  # presence may still be on its way
            if exc.code != "not-found" or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    print(f"scene: call {sid} placed; waiting for bob's agent to report it", flush=True)
    for _ in range(50):
        if any(s["sid"] == sid and s["state"] == "RECEIVEDINITIATE" for s in bob.sessions()):
            break
        time.sleep(0.1)
    else:
        raise SystemExit("scene: bob's agent never reported the incoming call")
    print("scene: bob accepts", flush=True)
    bob.accept(sid)
    time.sleep(2.0)
    print("scene: alice hangs up", flush=True)
    alice.hangup(sid)
    for _ in range(50):
        if not alice.sessions() and not bob.sessions():
            break
        time.sleep(0.1)
    sample = DIR / "hello.bin"
    sample.write_bytes(os.urandom(2 * 1024 * 1024))
    print("scene: alice sends a 2 MB file to bob", flush=True)
    fsid = alice.send_file("bob@localhost", str(sample))
    for _ in range(50):
        if any(s["sid"] == fsid and s["state"] == "RECEIVEDINITIATE" for s in bob.sessions()):
            break
        time.sleep(0.1)
    print("scene: bob accepts the file", flush=True)
    bob.accept(fsid)
    for _ in range(100):
        if not bob.sessions() and not alice.sessions():
            break
        time.sleep(0.1)
    received = DIR / "bob-downloads" / sample.name
    same = received.exists() and received.read_bytes() == sample.read_bytes()
    print(f"scene: bob has {received}: {'identical' if same else 'MISSING OR DIFFERENT'}",
          flush=True)
    time.sleep(0.3)
    stop.set()
    print("scene: done", flush=True)
    if not same:
        return 1
    if stay:
        print("scene: playground stays up; try: .venv/bin/jingle --agent "
              f"{config_path('alice')} status   (Ctrl-C to stop)", flush=True)
        threading.Event().wait()
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m scripts.playground")
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("prosody")
    agent = sub.add_parser("agent")
    agent.add_argument("user", choices=sorted(USERS))
    scene = sub.add_parser("scene")
    scene.add_argument("--stay", action="store_true",
                       default=os.environ.get("PLAYGROUND_STAY") == "1")
    args = parser.parse_args()
    if args.what == "prosody":
        run_prosody()
    elif args.what == "agent":
        run_agent(args.user)
    else:
        sys.exit(run_scene(args.stay))


if __name__ == "__main__":
    main()
