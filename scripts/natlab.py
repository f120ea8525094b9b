"""A test internet with NATs, made of network namespaces (the NAT matrix of issue 7).

    host a (10.1.0.2) -- NAT a (10.1.0.1 | 198.18.1.2) --+
                                                          +-- internet (198.18.0.1:
    host b (10.2.0.2) -- NAT b (10.2.0.1 | 198.18.2.2) --+     Prosody, coturn)

Each NAT namespace runs nftables in one of the matrix's modes, set per row:
- ``open``: plain routing, no NAT (the internet routes 10.x to the NATs);
- ``cone``: endpoint-independent mapping (Linux keeps the source port) and
  NEW inbound dropped on the WAN side. Plain MASQUERADE alone turns symmetric
  after an unsolicited inbound packet (measured here), hence the drop;
- ``symmetric``: ``masquerade random``: a fresh port per destination, NEW
  inbound dropped;
- ``udp-blocked``: the cone NAT that also drops every UDP datagram it would
  forward, so only TCP (XMPP, TURN over TCP, SOCKS5) gets out;
- ``symmetric-unfiltered``: ``masquerade random`` with no inbound filter, so
  unsolicited packets draw ICMP errors instead of silence;
- ``tls-only``: UDP blocked and TCP to the plain TURN port too: only XMPP,
  the bytestreams proxy and TURN over TLS get out.
Only the open row routes the private networks across the internet; otherwise
10.x is unreachable from it, as on the real internet.
:meth:`NatLab.move` gives a host a new address on the same NAT (a network change).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from scripts.agents import USERS, Agent
from scripts.local_coturn import LocalCoturn
from scripts.local_prosody import LocalProsody

SERVER = "198.18.0.1"
SECRET = "matrix-secret"


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A command (``ip``, ``nft``, ``tc``), its output captured; raises on failure
    unless ``check`` is false. Shared with tests/integration/netns.py."""
    return subprocess.run(list(args), capture_output=True, text=True, check=check)
MODES = ("open", "cone", "symmetric", "udp-blocked", "symmetric-unfiltered", "tls-only")


class NatLab:
    def __init__(self) -> None:
        tag = str(os.getpid() % 100000)
        self.internet = f"pjI{tag}"
        self.nats = {s: f"pjN{s.upper()}{tag}" for s in "ab"}
        self.hosts = {s: f"pjH{s.upper()}{tag}" for s in "ab"}
        self.wan: dict[str, str] = {}
        self.lan_dev: dict[str, str] = {}
        self.address: dict[str, str] = {}
        self.turn_port = 0  # set by internet(): the port tls-only blocks
        self.ca_file = ""  # the TURN server's TLS certificate, for agents to trust
        for ns in (self.internet, *self.nats.values(), *self.hosts.values()):
            run("ip", "netns", "add", ns)
            self._in(ns, "ip", "link", "set", "lo", "up")
        self._in(self.internet, "ip", "addr", "add", f"{SERVER}/32", "dev", "lo")
        self._in(self.internet, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for i, side in enumerate("ab", start=1):
            nat, host = self.nats[side], self.hosts[side]
            inet_end, wan_end = f"pi{side}{tag}"[:15], f"pw{side}{tag}"[:15]
            lan_end, host_end = f"pl{side}{tag}"[:15], f"ph{side}{tag}"[:15]
            self._veth(inet_end, self.internet, f"198.18.{i}.1/24",
                       wan_end, nat, f"198.18.{i}.2/24")
            self._veth(lan_end, nat, f"10.{i}.0.1/24", host_end, host, f"10.{i}.0.2/24")
            self._in(nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            self._in(nat, "ip", "route", "add", "default", "via", f"198.18.{i}.1")
            self._in(host, "ip", "route", "add", "default", "via", f"10.{i}.0.1")
            self.wan[side], self.lan_dev[side] = wan_end, host_end
            self.address[side] = f"10.{i}.0.2"

    def _in(self, ns: str, *args: str) -> None:
        run("ip", "netns", "exec", ns, *args)

    def _veth(self, a: str, a_ns: str, a_addr: str, b: str, b_ns: str, b_addr: str) -> None:
        run("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        for dev, ns, addr in ((a, a_ns, a_addr), (b, b_ns, b_addr)):
            run("ip", "link", "set", dev, "netns", ns)
            self._in(ns, "ip", "addr", "add", addr, "dev", dev)
            self._in(ns, "ip", "link", "set", dev, "up")

    def prefix(self, side: str) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.hosts[side])

    def server_prefix(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.internet)

    def set_mode(self, mode: str) -> None:
        """Both NATs to ``mode`` (one of :data:`MODES`); old mappings are flushed."""
        if mode not in MODES:
            raise ValueError(mode)
        for i, (side, nat) in enumerate(self.nats.items(), start=1):
            # Only the open row routes the private networks across the internet.
            route = ("ip", "netns", "exec", self.internet, "ip", "route")
            if mode == "open":
                run(*route, "replace", f"10.{i}.0.0/24", "via", f"198.18.{i}.2")
            else:
                run(*route, "del", f"10.{i}.0.0/24", check=False)
            run("ip", "netns", "exec", nat, "nft", "delete", "table", "ip", "pjnat", check=False)
            run("ip", "netns", "exec", nat, "conntrack", "-F", check=False)
            if mode == "open":
                continue
            wan = self.wan[side]
            masquerade = "masquerade random" if mode.startswith("symmetric") else "masquerade"
            udp_drop = ("meta l4proto udp drop;" if mode in ("udp-blocked", "tls-only")
                        else "")
            if mode == "tls-only":
                udp_drop += f" tcp dport {self.turn_port} drop;"
            inbound = ("" if mode == "symmetric-unfiltered"
                       else f'iifname "{wan}" ct state new drop;')
            ruleset = (
                "table ip pjnat {\n"
                f"  chain natout {{ type nat hook postrouting priority 100; "
                f"oifname \"{wan}\" {masquerade}; }}\n"
                f"  chain through {{ type filter hook forward priority 0; {udp_drop} "
                f"{inbound} }}\n"
                f"  chain tome {{ type filter hook input priority 0; {inbound} }}\n"
                "}\n")
            subprocess_input(("ip", "netns", "exec", nat, "nft", "-f", "-"), ruleset)

    def impair(self, loss_percent: float) -> str:
        """UDP loss (and 30 ms +-10 ms delay where the kernel has sch_netem) on both
        NATs' WAN links, both ways; returns what was applied."""
        how = ""
        for side, nat in self.nats.items():
            wan = self.wan[side]
            netem = run("ip", "netns", "exec", nat, "tc", "qdisc", "replace", "dev", wan,
                        "root", "netem", "loss", f"{loss_percent}%", "delay", "30ms", "10ms",
                        check=False)
            if netem.returncode == 0:
                how = f"netem: {loss_percent}% loss, 30 ms +-10 ms"
                continue
            # No sch_netem in this kernel: random drop of UDP, loss only.
            subprocess_input(("ip", "netns", "exec", nat, "nft", "-f", "-"), (
                "table ip pjloss {\n"
                "  chain lose { type filter hook forward priority 10; "
                f"meta l4proto udp numgen random mod 1000 < {int(loss_percent * 10)} drop; }}\n"
                "}\n"))
            how = f"nftables: {loss_percent}% UDP loss, no delay (no sch_netem)"
        return how

    def unimpair(self) -> None:
        for side, nat in self.nats.items():
            run("ip", "netns", "exec", nat, "tc", "qdisc", "del", "dev", self.wan[side], "root",
                check=False)
            run("ip", "netns", "exec", nat, "nft", "delete", "table", "ip", "pjloss",
                check=False)

    def capture(self, side: str, seconds: float) -> subprocess.Popen[str]:
        """Sources of the UDP datagrams ``side``'s host receives for ``seconds``, one
        per line on the process's stdout (AF_PACKET inside its namespace)."""
        script = (
            "import socket,time,sys\n"
            f"s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW,socket.ntohs(3));"
            f"s.bind(('{self.lan_dev[side]}',0));s.settimeout(0.2)\n"
            f"end=time.monotonic()+{seconds}\nseen=set()\n"
            "while time.monotonic()<end:\n"
            " try: f,a=s.recvfrom(65535)\n"
            " except TimeoutError: continue\n"
            " if a[2]==socket.PACKET_OUTGOING: continue\n"
            " ip=f[14:]\n"
            " if len(ip)>=20 and ip[0]>>4==4 and ip[9]==17: seen.add(socket.inet_ntoa(ip[12:16]))\n"
            "print('\\n'.join(sorted(seen)))\n")
        return subprocess.Popen(["ip", "netns", "exec", self.hosts[side], "python3", "-c",
                                 script], stdout=subprocess.PIPE, text=True)

    def move(self, side: str) -> str:
        """Give ``side``'s host a new address (the old one disappears): a network change."""
        host, dev = self.hosts[side], self.lan_dev[side]
        i = "ab".index(side) + 1
        old = self.address[side]
        new = f"10.{i}.0.{int(old.rsplit('.', 1)[1]) + 1}"
        # Deleting the primary address takes the secondaries of its subnet along,
        # so the old one goes first.
        self._in(host, "ip", "addr", "del", f"{old}/24", "dev", dev)
        self._in(host, "ip", "addr", "add", f"{new}/24", "dev", dev)
        self._in(host, "ip", "route", "replace", "default", "via", f"10.{i}.0.1")
        self.address[side] = new
        return new

    def close(self) -> None:
        for ns in (*self.hosts.values(), *self.nats.values(), self.internet):
            run("ip", "netns", "del", ns, check=False)


def subprocess_input(args: tuple[str, ...], text: str) -> None:
    subprocess.run(list(args), input=text, text=True, check=True, capture_output=True)


@contextlib.contextmanager
def internet(keep_logs: bool = False) -> Iterator[tuple[NatLab, LocalProsody]]:
    """The lab with coturn and Prosody (XEP-0215 pointing at coturn) on the internet."""
    lab = NatLab()
    data = Path(tempfile.mkdtemp(prefix="pj-nat-"))
    turn = LocalCoturn(data / "turn", auth_secret=SECRET, ip=SERVER, prefix=lab.server_prefix(),
                       tls_port=5349)
    server = LocalProsody(data / "prosody", tls=True, interfaces=(SERVER,),
                          prefix=lab.server_prefix())
    try:
        turn.start()
        lab.turn_port, lab.ca_file = turn.port, str(turn.ca_file)
        server.turn = (SERVER, turn.port, SECRET, 3600)
        server.turn_tls_port = turn.tls_port
        server.configure(USERS)
        server.start()
        yield lab, server
    finally:
        server.stop()
        turn.stop()
        lab.close()
        if keep_logs:
            shutil.copy(data / "turn" / "turnserver.log", "/tmp/last-nat-turnserver.log")
        shutil.rmtree(data, ignore_errors=True)


def start_pair(lab: NatLab, server: LocalProsody, folder: Path, extra: str = "",
               log_level: str = "info",
               alice_env: dict[str, str] | None = None) -> tuple[Agent, Agent]:
    """alice behind NAT a, bob behind NAT b; both auto-accept calls and files. Each
    call records what a side heard in ``<user>-heard-<sid>.wav`` (a file per call,
    so the presence probe's call can never touch the one a test reads)."""
    from scripts.agents import make_ready

    agents = []
    for user, side, tone in (("alice", "a", 440), ("bob", "b", 660)):
        agent = Agent(server, user, folder, prefix=lab.prefix(side), address=SERVER,
                      tls="optional", log_level=log_level,
                      extra=f'[audio]\ninput = "tone:{tone}"\n'
                            f'output = "file:{folder}/{user}-heard-{{sid}}.wav"\n'
                            '[policy]\nauto_accept_calls = "all"\nauto_accept_files = "all"\n'
                            f'[transfer]\ndownload_dir = "{folder}/{user}-files"\n{extra}',
                      # aioice verifies TURN-over-TLS against the default trust store.
                      env={"SSL_CERT_FILE": lab.ca_file}
                      | ((alice_env or {}) if user == "alice" else {}))
        agents.append(agent)
    for agent in agents:
        agent.wait_connected(30)
    make_ready(agents[0], agents[1], timeout=20)
    return agents[0], agents[1]
