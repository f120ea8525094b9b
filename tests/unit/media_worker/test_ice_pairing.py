"""Which remote candidates our relayed candidate is paired with (media_worker.ice)."""

from types import SimpleNamespace

import aioice
import pytest

from media_worker.ice import Connection, site_local


@pytest.mark.parametrize("host, local", [
    ("10.1.0.2", True), ("192.168.1.5", True), ("172.20.0.1", True), ("100.64.3.3", True),
    ("fd00::2", True), ("fe80::1", True), ("127.0.0.1", True),
    ("198.18.0.1", False), ("203.0.113.7", False), ("2001:db8::1", False),
    ("abc.local", False),
])
def test_site_local(host, local):
    assert site_local(host) is local


def candidate(kind, host, port=4000):
    return aioice.Candidate(foundation=kind + host, component=1, transport="udp",
                            priority=1, host=host, port=port, type=kind)


def pairs_for(local_candidates, remote):
    conn = Connection(ice_controlling=True, components=1)
    conn._protocols = [SimpleNamespace(local_candidate=c) for c in local_candidates]
    conn._pair_remote_candidate(remote)
    return [(p.local_candidate.type, p.remote_candidate.host) for p in conn._check_list]


def test_public_relay_is_not_paired_with_a_private_host_candidate():
    local = [candidate("host", "10.1.0.2"), candidate("relay", "198.18.0.1")]
    assert pairs_for(local, candidate("host", "10.2.0.2")) == [("host", "10.2.0.2")]


def test_public_relay_is_paired_with_public_and_reflexive_candidates():
    local = [candidate("host", "10.1.0.2"), candidate("relay", "198.18.0.1")]
    assert pairs_for(local, candidate("srflx", "198.18.2.2")) == [
        ("host", "198.18.2.2"), ("relay", "198.18.2.2")]
    assert pairs_for(local, candidate("host", "203.0.113.9")) == [
        ("host", "203.0.113.9"), ("relay", "203.0.113.9")]


def test_a_relay_inside_the_site_may_reach_private_hosts():
    local = [candidate("relay", "10.9.0.1")]
    assert pairs_for(local, candidate("host", "10.2.0.2")) == [("relay", "10.2.0.2")]
