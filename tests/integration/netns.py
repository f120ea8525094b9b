"""Test networks made of Linux network namespaces (the project's own test hosts).

``Lab`` builds: a router namespace R (Prosody runs there) linked by veth pairs
to one namespace per agent host, each on its own 10.77.x.0/24. Impairments go
on each host's egress: ``tc netem`` (loss, delay, jitter) where the kernel has
sch_netem, else nftables random drop (loss only) — :attr:`Lab.can_delay` says.
Everything is removed on ``close()``.
"""

from __future__ import annotations

import os
import subprocess

from scripts.natlab import run


def namespaces_usable() -> str | None:
    """None if namespaces can be made here, else the reason."""
    name = f"pjprobe{os.getpid()}"
    probe = run("ip", "netns", "add", name, check=False)
    if probe.returncode != 0:
        return f"cannot create network namespaces: {probe.stderr.strip()}"
    run("ip", "netns", "del", name, check=False)
    return None


class Lab:
    def __init__(self, hosts: tuple[str, ...] = ("a", "b")) -> None:
        tag = str(os.getpid() % 100000)
        self.router = f"pjR{tag}"
        self.hosts = {h: f"pj{h.upper()}{tag}" for h in hosts}
        self.links: dict[str, str] = {}
        self.addresses: dict[str, tuple[str, str]] = {}  # host -> (router side, host side)
        run("ip", "netns", "add", self.router)
        self._in(self.router, "ip", "link", "set", "lo", "up")
        self._in(self.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for i, (host, ns) in enumerate(self.hosts.items(), start=1):
            run("ip", "netns", "add", ns)
            self._in(ns, "ip", "link", "set", "lo", "up")
            router_end, host_end = f"r{host}{tag}"[:15], f"h{host}{tag}"[:15]
            run("ip", "link", "add", router_end, "type", "veth", "peer", "name", host_end)
            run("ip", "link", "set", router_end, "netns", self.router)
            run("ip", "link", "set", host_end, "netns", ns)
            gw, addr = f"10.77.{i}.1", f"10.77.{i}.2"
            self._in(self.router, "ip", "addr", "add", f"{gw}/24", "dev", router_end)
            self._in(self.router, "ip", "link", "set", router_end, "up")
            self._in(ns, "ip", "addr", "add", f"{addr}/24", "dev", host_end)
            self._in(ns, "ip", "link", "set", host_end, "up")
            self._in(ns, "ip", "route", "add", "default", "via", gw)
            self.links[host] = host_end
            self.addresses[host] = (gw, addr)
        self.can_delay = self._probe_netem()

    def _in(self, ns: str, *args: str) -> subprocess.CompletedProcess[str]:
        return run("ip", "netns", "exec", ns, *args)

    def prefix(self, host: str) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.hosts[host])

    def _probe_netem(self) -> bool:
        ns = self.hosts[next(iter(self.hosts))]
        ok = run("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem",
                 "delay", "1ms", check=False).returncode == 0
        if ok:
            run("ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", "lo", "root",
                check=False)
        return ok

    def impair(self, loss_percent: float, delay_ms: float = 0, jitter_ms: float = 0) -> None:
        """UDP loss (and delay where possible) on every host's way out."""
        for host, ns in self.hosts.items():
            self.clear(host)
            if self.can_delay:
                args = ["tc", "qdisc", "add", "dev", self.links[host], "root", "netem",
                        "loss", f"{loss_percent}%"]
                if delay_ms:
                    args += ["delay", f"{delay_ms}ms", f"{jitter_ms}ms"]
                self._in(ns, *args)
            else:
                self._in(ns, "nft", "add", "table", "inet", "pjloss")
                self._in(ns, "nft", "add", "chain", "inet", "pjloss", "out",
                         "{ type filter hook output priority 0; }")
                self._in(ns, "nft", "add", "rule", "inet", "pjloss", "out", "meta", "l4proto",
                         "udp", "numgen", "random", "mod", "1000", "<",
                         str(int(loss_percent * 10)), "drop")

    def clear(self, host: str) -> None:
        ns = self.hosts[host]
        run("ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", self.links[host], "root",
            check=False)
        run("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "pjloss", check=False)

    def close(self) -> None:
        for ns in (*self.hosts.values(), self.router):
            run("ip", "netns", "del", ns, check=False)
